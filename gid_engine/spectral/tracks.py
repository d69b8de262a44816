"""Point tracks: where chosen points of the picture are in every frame of a motion texture, and the two track
formats video models read (core ComfyUI's TRACKS and KJNodes' coordinate JSON), both ways.

Coordinates are pixels of the picture with pixel centres on whole numbers: (0, 0) is the centre of the top-left
pixel, x grows to the right and y down (as OpenCV, KJNodes' spline editor and core's track nodes count them).
A track is the path of the picture content that starts at its point: point + displacement of every frame, the
same displacement the renderer splats that pixel by, so drawn over the rendered frames a track sits on its pixel.
"""
from __future__ import annotations

import json
import math

import torch
import torch.nn.functional as F

from .. import checks
from .motion import MotionTexture

# Far beyond any sensible use; keeps a typo from building a huge JSON string.
MAX_TRACKS = 4096
# Mask pixels at or above this value count as "inside" (ComfyUI masks are 0..1).
MASK_INSIDE = 0.5


def grid_points(height: int, width: int, count: int) -> torch.Tensor:
    """About `count` points [N, 2] (x, y) on an even grid over the picture, half a spacing in from the edges.

    The grid's columns and rows follow the picture's aspect, so N is the nearest such grid (e.g. 16 on a 16:9
    picture gives 5 x 3 = 15)."""
    count = checks.integer("count", count, minimum=1, maximum=MAX_TRACKS)
    columns = max(1, round(math.sqrt(count * width / height)))
    rows = max(1, round(count / columns))
    xs = (torch.arange(columns, dtype=torch.float64) + 0.5) * width / columns - 0.5
    ys = (torch.arange(rows, dtype=torch.float64) + 0.5) * height / rows - 0.5
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1)


def mask_points(mask: torch.Tensor, count: int) -> torch.Tensor:
    """At most `count` points [N, 2] (x, y) spread evenly over the pixels where mask [H, W] >= MASK_INSIDE.

    Points sit on a grid whose spacing is chosen so that about `count` of its nodes fall inside; when more do,
    every k-th is kept. A mask with fewer than `count` inside pixels gives one point per pixel."""
    count = checks.integer("count", count, minimum=1, maximum=MAX_TRACKS)
    inside = mask >= MASK_INSIDE
    area = int(inside.sum())
    if area == 0:
        raise ValueError(f"mask: no pixel is at or above {MASK_INSIDE}; expected a mask that marks where to put "
                         "tracks (white = tracked)")
    h, w = inside.shape
    spacing = math.sqrt(area / count)
    while True:
        step = max(1.0, spacing)
        ys = torch.arange(step / 2 - 0.5, h - 0.5, step).round().long().clamp(0, h - 1).unique()
        xs = torch.arange(step / 2 - 0.5, w - 0.5, step).round().long().clamp(0, w - 1).unique()
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        chosen = inside[y, x]
        points = torch.stack([x[chosen], y[chosen]], dim=1).to(torch.float64)
        if len(points) >= count or step == 1.0:
            break
        spacing = step * 0.8  # a thin or ragged mask: tighten the grid until enough nodes land inside
    if len(points) > count:
        points = points[torch.linspace(0, len(points) - 1, count).round().long()]
    return points


def sample_tracks(motion: MotionTexture, points: torch.Tensor, height: int, width: int, batch_index: int = 0,
                  chunk_frames: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions [T, N, 2] (x, y) of `points` [N, 2] in every frame of `motion`, and visibility [T, N] (bool).

    height x width is the picture the motion is rendered on (the volume is resized to it exactly as the
    renderer resizes it). A point is visible while it is inside the picture."""
    batch_index = checks.integer("batch_index", batch_index, minimum=0, maximum=motion.batch - 1)
    volume = motion.volume.select(batch_index).resize(height, width)
    # The coefficients at the points (bilinear between pixel centres), as a 1 x N "picture": the motion
    # texture then synthesises the points' displacement with its own timing, anchoring or modal weights.
    grid = torch.stack([points[:, 0] / max(width - 1, 1), points[:, 1] / max(height - 1, 1)], dim=1) * 2 - 1
    planes = torch.view_as_real(volume.coeffs[0]).permute(0, 1, 4, 2, 3)  # [K, xy, re/im, H, W]
    k = planes.shape[0]
    planes = planes.reshape(1, k * 4, height, width).to(torch.float64)
    at = F.grid_sample(planes, grid.view(1, 1, -1, 2).to(planes), mode="bilinear", align_corners=True)
    at = at.view(k, 2, 2, 1, -1)
    coeffs = torch.complex(at[:, :, 0], at[:, :, 1]).unsqueeze(0).to(volume.coeffs.dtype)
    texture = motion.replace(volume=volume.replace(coeffs=coeffs))
    if hasattr(motion, "weights"):  # a modal response: per-picture weights, its objects' windows at the points
        points64 = points.to(torch.float64)
        texture = texture.replace(weights=motion.weights[:, batch_index:batch_index + 1],
                                  sampled_at=(points64[:, 0] + 0.5, points64[:, 1] + 0.5, height, width))
    paths = []
    for start in range(0, motion.frame_count, chunk_frames):
        fields = texture.fields(start, min(start + chunk_frames, motion.frame_count))  # [n, 1, 2, 1, N]
        paths.append(points[None].to(torch.float64) + fields[:, 0, :, 0].transpose(1, 2).to(torch.float64))
    path = torch.cat(paths).float()
    visible = ((path[..., 0] >= -0.5) & (path[..., 0] <= width - 0.5)
               & (path[..., 1] >= -0.5) & (path[..., 1] <= height - 0.5))
    return path, visible


def core_tracks(path: torch.Tensor, visible: torch.Tensor) -> dict:
    """Core ComfyUI's TRACKS value: {"track_path": [T, N, 2] float32 pixels, "track_visibility": [T, N] bool}."""
    return {"track_path": path.float(), "track_visibility": visible.bool()}


def coordinates_json(path: torch.Tensor, decimals: int = 2) -> str:
    """KJNodes' coordinate JSON: a list per track of {"x", "y"} per frame (pixels)."""
    tracks = path.transpose(0, 1).tolist()
    return json.dumps([[{"x": round(x, decimals), "y": round(y, decimals)} for x, y in track] for track in tracks])


def _point(name: str, item) -> tuple[float, float]:
    if not isinstance(item, dict) or "x" not in item or "y" not in item:
        raise ValueError(f"{name}: expected a point like {{\"x\": 120, \"y\": 80}}, got {json.dumps(item)[:80]}")
    return checks.number(f"{name}.x", item["x"]), checks.number(f"{name}.y", item["y"])


def parse_coordinates(text, name: str = "path") -> list[list[tuple[float, float]]]:
    """KJNodes' coordinate JSON -> tracks, each a list of (x, y) pixels, one per frame.

    Takes a list of tracks ([[{"x", "y"}, ...], ...]) or one track ([{"x", "y"}, ...]); like KJNodes' own
    output, single quotes are accepted in place of double quotes."""
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected coordinate JSON text, got {type(text).__name__}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = json.loads(text.replace("'", '"'))
        except json.JSONDecodeError as err:
            raise ValueError(f"{name}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); expected "
                             'KJNodes coordinates such as [{"x": 100, "y": 80}, {"x": 140, "y": 80}]') from None
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name}: expected a non-empty list of points or of tracks, got {json.dumps(value)[:80]}")
    tracks = value if isinstance(value[0], list) else [value]
    if len(tracks) > MAX_TRACKS:
        raise ValueError(f"{name}: {len(tracks)} tracks; allowed: at most {MAX_TRACKS}")
    parsed = []
    for t, track in enumerate(tracks):
        if not isinstance(track, list) or not track:
            raise ValueError(f"{name}[{t}]: expected a non-empty list of points, got {json.dumps(track)[:80]}")
        parsed.append([_point(f"{name}[{t}][{i}]", item) for i, item in enumerate(track)])
    return parsed


def tracks_from_core(tracks, name: str = "tracks") -> list[list[tuple[float, float]]]:
    """Core TRACKS -> the visible part of each track, as a list of (x, y) pixels per frame."""
    if not isinstance(tracks, dict) or "track_path" not in tracks:
        raise ValueError(f"{name}: expected core TRACKS (a dict with track_path), got {type(tracks).__name__}")
    path = torch.as_tensor(tracks["track_path"]).detach().cpu()
    if path.ndim == 4 and path.shape[0] == 1:
        path = path[0]
    if path.ndim != 3 or path.shape[-1] != 2:
        raise ValueError(f"{name}: track_path must be [frames, tracks, 2], got {tuple(path.shape)}")
    checks.finite_tensor(f"{name}.track_path", path)
    visible = tracks.get("track_visibility")
    if visible is None:
        visible = torch.ones(path.shape[:2], dtype=torch.bool)
    else:
        visible = torch.as_tensor(visible).detach().cpu().bool()
        if visible.ndim == 3 and visible.shape[0] == 1:
            visible = visible[0]
        try:  # core's mask-driven visibility is [frames, 1]: one value for every track
            visible = visible.expand(path.shape[:2])
        except RuntimeError:
            raise ValueError(f"{name}: track_visibility is {tuple(visible.shape)}; expected [frames, tracks] = "
                             f"{tuple(path.shape[:2])}") from None
    return [[tuple(map(float, p)) for p, seen in zip(path[:, n], visible[:, n]) if seen]
            for n in range(path.shape[1])]
