"""Point tracks of motion textures: they follow the rendered motion; the two track formats read back."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gid_engine.dynamics.actions import Action, pulls_from_paths
from gid_engine.dynamics.simulate import Controls, simulate
from gid_engine.loops.media import read_image
from gid_engine.render.renderer import SplatRenderer, render_frames
from gid_engine.sources.prior import ProceduralPrior
from gid_engine.spectral import tracks
from gid_engine.spectral.motion import MotionTexture

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "dandelion.jpg"
H, W, FRAMES = 144, 256, 12


@pytest.fixture(scope="module")
def dandelion():
    picture = F.interpolate(read_image(SAMPLE).permute(0, 3, 1, 2), size=(H, W), mode="bilinear", antialias=True,
                            align_corners=False).clamp(0, 1)
    volume = ProceduralPrior().predict(picture, seed=0)
    motion = MotionTexture.from_volume(volume, FRAMES, 12.0, loop=True, calm_start=True)
    return picture, motion


def test_tracks_land_where_the_renderer_moves_their_pixel(dandelion):
    """Render a picture whose colours are its own pixel coordinates: at a track's position in every frame the
    rendered colour must name the track's starting point."""
    picture, motion = dandelion
    points = tracks.grid_points(H, W, 400)
    path, visible = tracks.sample_tracks(motion, points, H, W)
    assert path.shape == (FRAMES, len(points), 2) and visible.shape == (FRAMES, len(points))
    moved = (path - points[None].float()).norm(dim=-1)
    assert float(moved.max()) > 1.0  # the sample really moves
    y, x = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    coordinates = torch.stack([x / W, y / H, torch.zeros_like(x)])[None]
    rendered = render_frames(SplatRenderer(), coordinates, motion)[0]  # [T, H, W, 3]
    grid = (torch.stack([path[..., 0] / (W - 1), path[..., 1] / (H - 1)], dim=-1) * 2 - 1).unsqueeze(1)
    found = F.grid_sample(rendered.permute(0, 3, 1, 2), grid, align_corners=True)[:, :2, 0]  # [T, 2, N]
    source = torch.stack([found[:, 0] * W, found[:, 1] * H], dim=-1)
    error = (source - points[None].float()).norm(dim=-1)[visible]
    assert float(error.median()) < 0.1 and float(error.quantile(0.9)) < 0.5


def test_tracks_follow_the_rendered_picture(dandelion):
    """Lucas-Kanade on the rendered dandelion frames, at textured moving points: the tracks agree to well
    under half a pixel, while assuming no motion at all is off by much more."""
    cv2 = pytest.importorskip("cv2")
    picture, motion = dandelion
    frames = (render_frames(SplatRenderer(), picture, motion)[0].numpy() * 255).round().astype(np.uint8)
    gray0 = cv2.cvtColor((picture[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)
    texture = cv2.cornerMinEigenVal(gray0, 7)
    chosen = (texture > np.percentile(texture, 90)) & (motion.mean_magnitude()[0, 0].numpy() > 0.5)
    points = tracks.mask_points(torch.from_numpy(chosen.astype(np.float32)), 200)
    path, _ = tracks.sample_tracks(motion, points, H, W)
    start = points.numpy().astype(np.float32).reshape(-1, 1, 2)
    errors, static = [], []
    for t in range(FRAMES):
        gray = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)
        seen, status, _ = cv2.calcOpticalFlowPyrLK(gray0, gray, start, None, winSize=(7, 7), maxLevel=2)
        ok = status.ravel() == 1
        errors.append(np.linalg.norm(seen.reshape(-1, 2) - path[t].numpy(), axis=1)[ok])
        static.append(np.linalg.norm(seen.reshape(-1, 2) - points.numpy(), axis=1)[ok])
    error, still = np.median(np.concatenate(errors)), np.median(np.concatenate(static))
    assert error <= 0.5 and error < 0.5 * still, (error, still)


def test_point_choices():
    grid = tracks.grid_points(90, 160, 16)
    assert grid.shape == (15, 2)  # 5 x 3 on a 16:9 picture
    assert float(grid[:, 0].min()) > 0 and float(grid[:, 0].max()) < 159
    mask = torch.zeros(90, 160)
    mask[20:40, 100:140] = 1
    points = tracks.mask_points(mask, 30)
    assert 20 <= len(points) <= 30
    assert bool(((points[:, 0] >= 100) & (points[:, 0] < 140) & (points[:, 1] >= 20) & (points[:, 1] < 40)).all())
    tiny = torch.zeros(90, 160)
    tiny[5, 7] = 1
    assert tracks.mask_points(tiny, 10).tolist() == [[7.0, 5.0]]
    with pytest.raises(ValueError, match="mask: no pixel"):
        tracks.mask_points(torch.zeros(90, 160), 10)
    with pytest.raises(ValueError, match="count: 0 is out of range"):
        tracks.grid_points(90, 160, 0)


def test_formats_round_trip(dandelion):
    _, motion = dandelion
    points = tracks.grid_points(H, W, 6)
    path, visible = tracks.sample_tracks(motion, points, H, W)
    text = tracks.coordinates_json(path)
    decoded = json.loads(text)
    assert len(decoded) == len(points) and len(decoded[0]) == FRAMES and set(decoded[0][0]) == {"x", "y"}
    parsed = tracks.parse_coordinates(text)
    assert np.allclose(np.array(parsed).transpose(1, 0, 2), path.numpy(), atol=0.006)
    core = tracks.core_tracks(path, visible)
    assert core["track_path"].dtype == torch.float32 and core["track_visibility"].dtype == torch.bool
    assert tracks.tracks_from_core(core) == [[tuple(map(float, p)) for p in path[:, n]] for n in range(len(points))]
    # one KJNodes spline (a single track), single quotes as KJNodes writes them
    assert tracks.parse_coordinates("[{'x': 1, 'y': 2}, {'x': 3, 'y': 4}]") == [[(1.0, 2.0), (3.0, 4.0)]]
    # core's mask-driven visibility is one column for every track
    hidden = {"track_path": path, "track_visibility": torch.tensor([True] * (FRAMES - 2) + [False] * 2)[:, None]}
    assert all(len(t) == FRAMES - 2 for t in tracks.tracks_from_core(hidden))


@pytest.mark.parametrize("text, message", [
    ("[{'x': 1}]", r"path\[0\]\[0\]: expected a point"),
    ("[]", "path: expected a non-empty list"),
    ("{", "path: not valid JSON"),
    ('[{"x": NaN, "y": 1}]', r"path\[0\]\[0\].x: expected a finite number"),
    ('[[{"x": 1, "y": 1}], []]', r"path\[1\]: expected a non-empty list"),
])
def test_bad_coordinates_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        tracks.parse_coordinates(text)


def test_a_drawn_path_becomes_a_pull(dandelion):
    paths = [[(38.0, 86.0), (44.0, 86.0), (54.0, 90.0)]]  # through the grass left of the big dandelion
    (pull,) = pulls_from_paths(paths, H, W, width=W, height=H, fps=10.0)
    assert pull == Action("pull", (38.5 / W, 86.5 / H), (16.0, 4.0), 0.2)
    # a path drawn on a picture twice the volume's size pulls half as many volume pixels
    (half,) = pulls_from_paths(paths, H, W, width=2 * W, height=2 * H, fps=10.0)
    assert half.vector == (8.0, 2.0)
    with pytest.raises(ValueError, match=r"path\[0\]: a pull needs at least two points"):
        pulls_from_paths([[(1.0, 1.0)]], H, W, width=W, height=H, fps=10.0)
    with pytest.raises(ValueError, match=r"path\[0\]\[0\]: \(300.0, 1.0\) is outside the 256x144 picture"):
        pulls_from_paths([[(300.0, 1.0), (2.0, 2.0)]], H, W, width=W, height=H, fps=10.0)
    # the pulled point follows the path's direction in the simulated response
    _, motion = dandelion
    response = simulate(motion.volume, pulls_from_paths(paths, H, W, width=W, height=H, fps=10.0),
                        Controls(frames=4, fps=10.0))
    path, _ = tracks.sample_tracks(response, torch.tensor([[38.0, 86.0]]), H, W)
    moved = path[2, 0] - torch.tensor([38.0, 86.0])  # frame 2 = the release
    # The point follows the pull (the tracks sample the objects' windows at the points themselves, not on the
    # 1 x N grid of samples, which left a 16 px pull moving the point 0.02 px).
    pulled = torch.tensor([16.0, 4.0])
    assert 0.8 * float(pulled.norm()) < float(moved.norm()) < 1.2 * float(pulled.norm())
    assert float(moved @ pulled) > 0.95 * float(moved.norm() * pulled.norm())
