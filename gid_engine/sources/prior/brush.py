"""The motion brush: an artist's strokes that correct what the prior moves, and which way.

The brush is one JSON value (the node keeps it in a widget, so saved workflows and API-format runs carry it):
    {"strokes": [{"kind": "moves" | "still" | "direction", "points": [[x, y], ...],
                  "radius": R, "strength": S}, ...]}
- x, y: fractions of the picture's width and height (0..1, top-left origin), so a brush painted on a preview
  applies to the picture at any size;
- radius: the brush radius as a fraction of the picture's longer side; its edge is soft over the outer half;
- strength: for "moves" and "still", how fully the stroke overrides the prior's own estimate (0..1); for
  "direction", the amplitude multiplier of the region (0..4, 1 keeps the prior's amplitude), whose sway axis
  follows the stroke (points in order along it).
Later strokes paint over earlier ones. "" or {} is no brush.
"""
from __future__ import annotations

import dataclasses
import json
import math

import torch

from ... import checks

KINDS = ("moves", "still", "direction")
RADIUS = checks.Range(0.005, 0.5)
COVER_STRENGTH = checks.Range(0.0, 1.0)
DIRECTION_STRENGTH = checks.Range(0.0, 4.0)
MAX_STROKES = 256
MAX_POINTS = 4096  # per stroke; a drawn path is sampled far below this
NAME = "motion_brush"


@dataclasses.dataclass(frozen=True)
class Stroke:
    kind: str
    points: tuple[tuple[float, float], ...]
    radius: float
    strength: float


@dataclasses.dataclass(frozen=True)
class BrushGuidance:
    """The strokes painted onto one grid [1, 1, h, w] (direction [1, 2, h, w])."""

    cover: torch.Tensor  # how fully the brush decides mobility here (0: the prior's own estimate)
    mobility: torch.Tensor  # the mobility the brush asks for, premultiplied by its cover
    direction: torch.Tensor  # unit sway axis of direction strokes (0 where none)
    direction_cover: torch.Tensor  # how fully a direction stroke sets the axis here
    gain: torch.Tensor  # amplitude multiplier (1 where no direction stroke)

    def apply_mobility(self, mobility: torch.Tensor) -> torch.Tensor:
        return mobility * (1 - self.cover) + self.mobility

    def apply_direction(self, direction: torch.Tensor) -> torch.Tensor:
        # An axis has no sign: flip the prior's axis to the stroke's side before blending, or they cancel.
        sign = torch.where((direction * self.direction).sum(1, keepdim=True) < 0, -1.0, 1.0)
        blended = direction * sign * (1 - self.direction_cover) + self.direction * self.direction_cover
        return blended / blended.norm(dim=1, keepdim=True).clamp(min=1e-6)


@dataclasses.dataclass(frozen=True)
class MotionBrush:
    strokes: tuple[Stroke, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.strokes

    def guidance(self, height: int, width: int) -> BrushGuidance:
        """The strokes rasterised on a height x width grid (any grid: coordinates are fractions)."""
        ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width
        yy, xx = torch.meshgrid(ys * height, xs * width, indexing="ij")  # pixel units, isotropic
        cover = torch.zeros(height, width)
        mobility = torch.zeros(height, width)
        direction = torch.zeros(2, height, width)
        direction_cover = torch.zeros(height, width)
        gain = torch.ones(height, width)
        long_side = max(height, width)
        for stroke in self.strokes:
            points = torch.tensor(stroke.points, dtype=torch.float32) * torch.tensor([width, height])
            radius = stroke.radius * long_side
            distance, tangent = _distance_to_path(points, xx, yy)
            # Soft edge over the outer half of the radius (smoothstep), at least a pixel wide on coarse grids.
            inner = max(0.5 * radius, radius - max(1.0, 0.5 * radius))
            weight = _smoothstep(radius, inner, distance)
            if stroke.kind == "direction":
                # Later strokes paint over earlier ones: "over" compositing of the axis and the gain.
                direction = direction * (1 - weight) + tangent * weight
                direction_cover = direction_cover * (1 - weight) + weight
                gain = gain * (1 - weight) + stroke.strength * weight
            else:
                target = stroke.strength if stroke.kind == "moves" else 1 - stroke.strength
                amount = weight if stroke.kind == "moves" else weight * (stroke.strength > 0)
                # A weak "still" stroke (strength < 1) lowers mobility to 1 - strength; a "moves" stroke of
                # strength S raises it to S: both are the stroke's target, blended by its soft footprint.
                mobility = mobility * (1 - amount) + target * amount
                cover = cover * (1 - amount) + amount
        norm = direction.norm(dim=0, keepdim=True)
        direction = torch.where(norm > 1e-6, direction / norm.clamp(min=1e-6), torch.zeros_like(direction))
        unsqueeze = lambda t: t.view(1, -1, height, width)  # noqa: E731
        return BrushGuidance(unsqueeze(cover), unsqueeze(mobility), unsqueeze(direction), unsqueeze(direction_cover),
                             unsqueeze(gain))


def parse_motion_brush(value) -> MotionBrush:
    """The brush from its widget value (a JSON string, or the parsed object); errors name `motion_brush`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return MotionBrush()
    value = checks.json_value(NAME, value)
    if not isinstance(value, dict):
        raise ValueError(f"{NAME}: expected a JSON object with a \"strokes\" list, got {type(value).__name__}")
    unknown = set(value) - {"strokes", "version"}
    if unknown:
        raise ValueError(f"{NAME}: unknown key(s) {', '.join(sorted(unknown))}; expected \"strokes\"")
    strokes = value.get("strokes", [])
    if not isinstance(strokes, list):
        raise ValueError(f"{NAME}: \"strokes\" must be a list, got {type(strokes).__name__}")
    if len(strokes) > MAX_STROKES:
        raise ValueError(f"{NAME}: {len(strokes)} strokes; at most {MAX_STROKES}")
    return MotionBrush(tuple(_stroke(i, s) for i, s in enumerate(strokes)))


def _stroke(index: int, raw) -> Stroke:
    where = f"{NAME}: stroke {index}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    unknown = set(raw) - {"kind", "points", "radius", "strength"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    points = raw.get("points")
    if not isinstance(points, list) or not points:
        raise ValueError(f"{where}: points must be a non-empty list of [x, y] pairs")
    if len(points) > MAX_POINTS:
        raise ValueError(f"{where}: {len(points)} points; at most {MAX_POINTS}")
    parsed = []
    for point in points:
        if (not isinstance(point, (list, tuple)) or len(point) != 2
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                           for c in point)):
            raise ValueError(f"{where}: each point must be [x, y] with finite numbers, got {point!r}")
        x, y = float(point[0]), float(point[1])
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ValueError(f"{where}: point {point!r} is outside the picture; x and y are fractions in 0..1")
        parsed.append((x, y))
    if kind == "direction" and len(parsed) < 2:
        raise ValueError(f"{where}: a direction stroke needs at least 2 points (its direction)")
    radius = RADIUS.check(f"{where} radius", raw.get("radius", 0.05))
    default_strength = 1.0
    strength_range = DIRECTION_STRENGTH if kind == "direction" else COVER_STRENGTH
    strength = strength_range.check(f"{where} strength", raw.get("strength", default_strength))
    return Stroke(kind, tuple(parsed), radius, strength)


def _smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _distance_to_path(points: torch.Tensor, xx: torch.Tensor, yy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance of every grid point to the polyline through `points` [N, 2] (pixels), and the unit tangent
    [2, h, w] of the nearest segment (zero for a single point)."""
    if points.shape[0] == 1:
        distance = ((xx - points[0, 0]) ** 2 + (yy - points[0, 1]) ** 2).sqrt()
        return distance, torch.zeros(2, *xx.shape)
    best = torch.full_like(xx, float("inf"))
    tangent = torch.zeros(2, *xx.shape)
    for a, b in zip(points[:-1], points[1:]):
        segment = b - a
        length2 = float(segment.pow(2).sum())
        if length2 < 1e-12:
            continue
        t = (((xx - a[0]) * segment[0] + (yy - a[1]) * segment[1]) / length2).clamp(0, 1)
        distance = ((xx - a[0] - t * segment[0]) ** 2 + (yy - a[1] - t * segment[1]) ** 2).sqrt()
        closer = distance < best
        best = torch.where(closer, distance, best)
        unit = segment / math.sqrt(length2)
        tangent = torch.where(closer, unit.view(2, 1, 1), tangent)
    if torch.isinf(best).all():  # every point the same: a dot
        distance = ((xx - points[0, 0]) ** 2 + (yy - points[0, 1]) ** 2).sqrt()
        return distance, tangent
    return best, tangent


# A drawn path steers a band this wide (fraction of the picture's longer side) around it.
PATH_RADIUS = 0.08


def add_direction_paths(value, paths, width: int, height: int, name: str = "direction_path",
                        radius: float = PATH_RADIUS, strength: float = 1.0) -> str:
    """The brush `value` with each drawn path (pixels of a width x height picture, e.g. KJNodes' Spline Editor
    coordinates) added as a direction stroke: the region along the path sways along it. Returns brush JSON."""
    brush = parse_motion_brush(value)
    strokes = [dataclasses.asdict(stroke) for stroke in brush.strokes]
    for index, path in enumerate(paths):
        points = []
        for x, y in path:
            if not (0 <= x <= width and 0 <= y <= height):
                raise ValueError(f"{name}[{index}]: point ({x:g}, {y:g}) is outside the {width}x{height} picture")
            point = [min(1.0, x / width), min(1.0, y / height)]
            if not points or point != points[-1]:
                points.append(point)
        if len(points) < 2:
            raise ValueError(f"{name}[{index}]: a path needs at least 2 different points (its direction)")
        strokes.append({"kind": "direction", "points": points[:MAX_POINTS], "radius": radius, "strength": strength})
    if len(strokes) > MAX_STROKES:
        raise ValueError(f"{name}: {len(strokes)} strokes with the motion brush's; at most {MAX_STROKES}")
    for stroke in strokes:
        stroke["points"] = [list(p) for p in stroke["points"]]
    return json.dumps({"strokes": strokes})
