"""Motion from a video: synthetic ground truth, loops made from clips, real-clip handling, bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gid_engine.loops.loop import SEAMLESS_RATIO, seam_ratio
from gid_engine.spectral.motion import MotionTexture
from gid_engine.render.renderer import SplatRenderer, render_frames
from benchmarks.video_motion import rerender_psnr
from gid_engine.sources.video import VideoMotionOptions, extract_motion, interpolate_duplicates, resample_time

T, FPS, H, W = 48, 24.0, 112, 160
# Two patches over a static background, each moving with its own spectrum: (axis, bin, amplitude px, phase).
PATCH_A = (slice(20, 84), slice(16, 72))
PATCH_B = (slice(24, 88), slice(92, 148))
MOTION_A = [(0, 1, 0.35, 0.3), (0, 4, 0.2, 1.0), (1, 2, 0.25, -0.7)]  # sub-pixel
MOTION_B = [(0, 1, 3.0, 1.2), (0, 3, 0.8, -0.4), (1, 2, 1.5, 2.0)]  # multi-pixel


def texture(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Band-limited random texture, evaluable at any real coordinates: exact warping is just a shifted lookup."""
    rng = np.random.default_rng(seed)
    out = np.full(x.shape + (3,), 0.5)
    for _ in range(24):
        wavelength = rng.uniform(5, 24)
        angle = rng.uniform(0, math.pi)
        phase = rng.uniform(0, 2 * math.pi)
        colour = rng.uniform(-0.06, 0.06, size=3)
        wave = np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / wavelength + phase)
        out += wave[..., None] * colour
    return out


def trajectory(motion, t: np.ndarray) -> np.ndarray:
    """[len(t), 2] displacement relative to frame 0."""
    d = np.zeros((len(t), 2))
    for axis, k, amp, phase in motion:
        d[:, axis] += amp * (np.cos(2 * math.pi * k * t / T + phase) - math.cos(phase))
    return d


def synthetic_clip() -> torch.Tensor:
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    background = texture(xs, ys, 1)
    t = np.arange(T)
    frames = []
    for i in t:
        frame = background.copy()
        for (rows, cols), motion, seed in ((PATCH_A, MOTION_A, 2), (PATCH_B, MOTION_B, 3)):
            dx, dy = trajectory(motion, t)[i]
            sx, sy = xs - dx, ys - dy  # where each output pixel comes from in frame 0
            inside = (sy >= rows.start) & (sy < rows.stop) & (sx >= cols.start) & (sx < cols.stop)
            frame[inside] = texture(sx, sy, seed)[inside]
        frames.append(frame)
    clip = np.round(np.clip(np.stack(frames), 0, 1) * 255) / 255  # 8-bit, like any decoded video
    return torch.from_numpy(clip).float()


def true_coefficient(motion, axis: int, k: int) -> complex:
    return sum(amp * T / 2 * complex(math.cos(phase), math.sin(phase))
               for a, kk, amp, phase in motion if a == axis and kk == k)


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return synthetic_clip()


@pytest.fixture(scope="module")
def extracted(clip):
    return extract_motion(clip, FPS, VideoMotionOptions(reference=0, max_size=0))


def interior(rows: slice, cols: slice, margin: int) -> tuple[slice, slice]:
    return slice(rows.start + margin, rows.stop - margin), slice(cols.start + margin, cols.stop - margin)


def test_dominant_bins_are_recovered_within_10_percent(extracted) -> None:
    coeffs = extracted.volume.coeffs[0]  # [K, 2, H, W]
    assert extracted.volume.num_bins == 16 and extracted.volume.period == T and extracted.volume.fps == FPS
    for (rows, cols), motion in ((PATCH_A, MOTION_A), (PATCH_B, MOTION_B)):
        r, c = interior(rows, cols, 6)
        for axis, k, _, _ in motion:
            truth = true_coefficient(motion, axis, k)
            estimate = coeffs[k, axis, r, c]
            per_pixel = (estimate - truth).abs() / abs(truth)
            assert float(per_pixel.median()) < 0.10, (motion, axis, k, float(per_pixel.median()))
            assert abs(complex(estimate.mean()) - truth) / abs(truth) < 0.10


def test_static_regions_stay_below_005_px(extracted) -> None:
    fields = MotionTexture.from_volume(extracted.volume, T, FPS, loop=False).fields(0, T)[:, 0]  # [T, 2, H, W]
    peak = fields.pow(2).sum(1).sqrt().amax(0)
    static = torch.ones(H, W, dtype=torch.bool)
    for rows, cols in (PATCH_A, PATCH_B):
        static[max(0, rows.start - 12):rows.stop + 12, max(0, cols.start - 12):cols.stop + 12] = False
    assert float(peak[static].max()) < 0.05


def test_loop_from_the_clip_has_no_seam_and_keeps_each_bins_amplitude(clip, extracted) -> None:
    volume = extracted.volume
    texture_ = MotionTexture.from_volume(volume, T, FPS, loop=True)
    frames = render_frames(SplatRenderer(), clip[:1].permute(0, 3, 1, 2), texture_)[0]
    assert seam_ratio(frames) <= SEAMLESS_RATIO
    again = extract_motion(frames, FPS, VideoMotionOptions(reference=0, max_size=0))
    source_bands = volume.band_amplitude()[0]
    loop_bands = again.volume.band_amplitude()[0]
    for k in (1, 2, 3, 4):  # the bins that carry the motion
        assert abs(float(loop_bands[k]) - float(source_bands[k])) / float(source_bands[k]) < 0.15, k


def test_rerender_beats_repeating_the_first_frame(clip, extracted) -> None:
    scores = rerender_psnr(clip, extracted)
    assert scores["psnr_motion"] > scores["psnr_repeat"] + 3


def test_fade_in_duplicates_and_time_resampling(clip) -> None:
    fade = torch.linspace(0.0, 0.9, 6).view(6, 1, 1, 1)
    faded = torch.cat([clip[:1] * fade, clip])  # six fade-in frames, then the clip
    with_dups = torch.cat([faded[:20], faded[19:20], faded[20:]])  # one repeated frame
    motion = extract_motion(with_dups, FPS, VideoMotionOptions(max_size=80, num_bins=8))
    assert motion.report["reference_frame"] == 6  # the auto reference skips the fade
    assert motion.report["duplicate_frames"] == 1
    assert torch.allclose(motion.reference_image, clip[0])

    disp = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 2, 2, 2).clone()
    disp[2] = disp[1]
    fixed = interpolate_duplicates(disp, np.array([False, False, True, False, False]))
    assert torch.allclose(fixed[2], torch.full((2, 2, 2), 2.0))
    slow = resample_time(torch.arange(9, dtype=torch.float32).view(9, 1, 1, 1), 8.0, 16.0, 17)
    assert torch.allclose(slow.flatten(), torch.arange(17) / 2)
    with pytest.raises(ValueError, match="period"):
        resample_time(disp, 8.0, 30.0, 150)


def test_camera_motion_is_removed() -> None:
    # a whole-frame pan (the camera) plus nothing else: after removal the scene is still
    ys, xs = np.mgrid[0:64, 0:96].astype(np.float64)
    frames = torch.from_numpy(np.stack([texture(xs - 0.4 * i, ys + 0.2 * i, 5) for i in range(20)])).float()
    kept = extract_motion(frames, 10.0, VideoMotionOptions(reference=0, num_bins=4, max_size=0))
    removed = extract_motion(frames, 10.0, VideoMotionOptions(reference=0, num_bins=4, max_size=0,
                                                              camera="remove (homography)"))
    assert float(kept.volume.band_amplitude()[0, 1]) > 0.5
    assert float(removed.volume.band_amplitude()[0, 1:].max()) < 0.05
    assert removed.report["camera_px_max"] > 5


@pytest.mark.parametrize("frames, fps, message", [
    (torch.rand(1, 32, 32, 3), 24.0, "at least 2 frames"),
    ([torch.rand(32, 32, 3), torch.rand(32, 40, 3)], 24.0, "same size"),
    (torch.rand(20, 32, 32, 3), 0.0, "fps"),
    (torch.rand(20, 32, 32, 3), -5.0, "fps"),
    (torch.zeros(20, 32, 32, 3), 24.0, "all-black"),
    (torch.rand(8, 32, 32, 3), 24.0, "num_bins"),
])
def test_bad_clips_give_clear_errors(frames, fps, message) -> None:
    with pytest.raises(ValueError, match=message):
        extract_motion(frames, fps)


def test_dataset_cli_keeps_good_windows_and_says_why_it_drops_the_rest(clip, tmp_path) -> None:
    import json

    from gid_engine.training.data import main
    from gid_engine.training.dataset import PairDataset
    from gid_engine.loops.media import write_animation

    videos = tmp_path / "videos"
    write_animation(clip, videos / "patches.mp4", FPS)
    write_animation(clip[:10], videos / "short.mp4", FPS)
    pan = torch.stack([torch.roll(clip[0], shifts=2 * i, dims=1) for i in range(T)])  # the whole frame slides
    write_animation(pan, videos / "pan.mp4", FPS)
    (videos / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "dataset"
    assert main([str(videos), str(out), "--size", "80x56", "--fps", "24", "--period", "40", "--bins", "8"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["source"] for s in manifest["samples"]] == ["patches.mp4@0"]
    reasons = {d["source"]: d["reason"] for d in manifest["dropped"]}
    assert reasons["short.mp4"].startswith("too short")
    assert reasons["broken.mp4"].startswith("unreadable")
    assert reasons["pan.mp4@0"].startswith("camera motion")
    image, channels = PairDataset(out)[0]
    assert image.shape == (3, 56, 80) and channels.shape == (32, 56, 80)
