"""User actions on a picture, as one JSON value shared by the node, the browser editor and the CLI.

The value is a JSON list; `[]` means no action. Each item is one of
- a pull: `{"type": "pull", "at": [x, y], "pull": [dx, dy], "release_s": 0}`: the point at fractions
  (x, y) of the picture's width and height (0..1, 0 = left/top) is dragged by (dx, dy) pixels of the
  spectral volume's grid and let go at `release_s` seconds (0: frame 0 already shows the pulled state;
  later: the drag eases in over the DRAG_SECONDS before the release, then it rings down);
- an impulse (a flick): `{"type": "impulse", "at": [x, y], "velocity": [vx, vy], "time_s": 0}`: the point
  is hit at `time_s` so that it starts moving at (vx, vy) pixels per second.
Unknown keys, points outside the picture, NaN and infinities are errors naming the offending entry.
"""
from __future__ import annotations

import dataclasses
import json

from .. import checks

ACTION_TYPES = ("pull", "impulse")
KEYS = {"pull": ("type", "at", "pull", "release_s"), "impulse": ("type", "at", "velocity", "time_s")}
# A pull released after frame 0 is dragged in over this long before (or from frame 0 if sooner).
DRAG_SECONDS = 0.5
# Far beyond any sensible clip; keeps a typo from building a huge simulation.
MAX_TIME_S = 3600.0
MAX_ACTIONS = 64


@dataclasses.dataclass(frozen=True)
class Action:
    kind: str  # "pull" or "impulse"
    at: tuple[float, float]  # fractions of width and height
    vector: tuple[float, float]  # pull: pixels; impulse: pixels per second
    time_s: float = 0.0  # pull: release time; impulse: hit time

    def to_json(self) -> dict:
        if self.kind == "pull":
            return {"type": "pull", "at": list(self.at), "pull": list(self.vector), "release_s": self.time_s}
        return {"type": "impulse", "at": list(self.at), "velocity": list(self.vector), "time_s": self.time_s}


def _pair(name: str, value, *, fraction: bool) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name}: expected a list of two numbers, got {json.dumps(value)[:80]}")
    bounds = {"minimum": 0.0, "maximum": 1.0} if fraction else {}
    return tuple(checks.number(f"{name}[{i}]", v, **bounds) for i, v in enumerate(value))


def parse_action(item, index: int, name: str = "actions") -> Action:
    where = f"{name}[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object like {{\"type\": \"pull\", ...}}, got {json.dumps(item)[:80]}")
    kind = checks.choice(f"{where}.type", item.get("type"), ACTION_TYPES)
    unknown = sorted(set(item) - set(KEYS[kind]))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; a {kind} takes "
                         f"{', '.join(KEYS[kind])}")
    vector_key, time_key = KEYS[kind][2], KEYS[kind][3]
    for required in ("at", vector_key):
        if required not in item:
            raise ValueError(f"{where}: missing {required!r}; a {kind} needs {', '.join(KEYS[kind][:3])}")
    at = _pair(f"{where}.at", item["at"], fraction=True)
    vector = _pair(f"{where}.{vector_key}", item[vector_key], fraction=False)
    time_s = checks.number(f"{where}.{time_key}", item.get(time_key, 0.0), minimum=0.0, maximum=MAX_TIME_S)
    return Action(kind, at, vector, time_s)


def parse_actions(text, name: str = "actions") -> list[Action]:
    """The actions JSON (a string, or an already decoded list) -> validated actions."""
    value = [] if isinstance(text, str) and not text.strip() else checks.json_value(
        name, text, '; expected a list such as [{"type": "pull", "at": [0.5, 0.4], "pull": [20, 0]}]')
    if not isinstance(value, list):
        raise ValueError(f"{name}: expected a JSON list of actions ([] for none), got {json.dumps(value)[:80]}")
    if len(value) > MAX_ACTIONS:
        raise ValueError(f"{name}: {len(value)} actions; allowed: at most {MAX_ACTIONS}")
    return [parse_action(item, i, name) for i, item in enumerate(value)]


def actions_json(actions: list[Action]) -> str:
    return json.dumps([a.to_json() for a in actions])


def pulls_from_paths(paths: list[list[tuple[float, float]]], volume_height: int, volume_width: int, *,
                     width: int, height: int, fps: float, name: str = "path") -> list[Action]:
    """Drawn paths (e.g. KJNodes' spline editor or core TRACKS, read by gid_engine.spectral.tracks) -> pulls.

    Each path is a list of (x, y) pixels of a width x height picture, pixel centres on whole numbers, one point
    per frame at `fps`. Its first point is grabbed, dragged to its last point and let go when the path ends
    ((points - 1) / fps seconds), so the picture moves along the path and then rings down. Only the two ends
    shape the pull: the spring response has no way to follow the bends in between.
    """
    pulls = []
    for n, path in enumerate(paths):
        where = f"{name}[{n}]"
        if len(path) < 2:
            raise ValueError(f"{where}: a pull needs at least two points (where it is grabbed and where it is let "
                             f"go), got {len(path)}")
        for i in (0, len(path) - 1):
            x, y = path[i]
            if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
                raise ValueError(f"{where}[{i}]: ({x}, {y}) is outside the {width}x{height} picture the path is "
                                 "drawn on")
        (x0, y0), (x1, y1) = path[0], path[-1]
        release_s = checks.number(f"{where}: the path's duration", (len(path) - 1) / fps, maximum=MAX_TIME_S)
        pulls.append(Action("pull", ((x0 + 0.5) / width, (y0 + 0.5) / height),
                            ((x1 - x0) * volume_width / width, (y1 - y0) * volume_height / height), release_s))
    return pulls
