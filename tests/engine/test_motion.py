import math

import pytest
import torch

from gid_engine.spectral.motion import MotionTexture, displacement_at, trajectories_to_spectral_volume
from gid_engine.spectral.volume import SpectralVolume


def band_limited_trajectories(period=150, bins=16, h=6, w=7, seed=0):
    """Trajectories made only of the kept bins: x(t) = sum_k a_k cos(2 pi k t / T + phi_k)."""
    g = torch.Generator().manual_seed(seed)
    amp = torch.rand(bins, 2, h, w, generator=g, dtype=torch.float64) * 3
    phase = torch.rand(bins, 2, h, w, generator=g, dtype=torch.float64) * 2 * math.pi
    t = torch.arange(period, dtype=torch.float64).view(-1, 1, 1, 1, 1)
    k = torch.arange(bins, dtype=torch.float64).view(1, -1, 1, 1, 1)
    traj = (amp * torch.cos(2 * math.pi * k * t / period + phase)).sum(dim=1)
    return traj, amp, phase


def test_fft_to_motion_texture_round_trip():
    traj, _, _ = band_limited_trajectories()
    volume = trajectories_to_spectral_volume(traj.float(), fps=30)
    assert volume.num_bins == 16 and volume.period == 150
    rebuilt = displacement_at(volume, torch.arange(150))[:, 0]
    assert (rebuilt.double() - traj).abs().max() < 1e-4


def test_round_trip_in_float64_is_exact():
    traj, _, _ = band_limited_trajectories(seed=3)
    volume = trajectories_to_spectral_volume(traj, fps=30)
    assert volume.coeffs.dtype == torch.complex128
    assert (displacement_at(volume, torch.arange(150))[:, 0] - traj).abs().max() < 1e-9


def test_fractional_time_is_smooth_and_exact():
    traj, amp, phase = band_limited_trajectories(seed=1)
    volume = trajectories_to_spectral_volume(traj, fps=30)
    t = torch.tensor([10.25, 10.5, 77.125])
    got = displacement_at(volume, t)[:, 0]
    k = torch.arange(16, dtype=torch.float64).view(1, -1, 1, 1, 1)
    want = (amp * torch.cos(2 * math.pi * k * t.double().view(-1, 1, 1, 1, 1) / 150 + phase)).sum(1)
    assert (got - want).abs().max() < 1e-9
    # No jumps: steps of 1/100 frame change displacement by at most max speed / 100.
    fine = displacement_at(volume, torch.linspace(0, 150, 15001))[:, 0]
    steps = (fine[1:] - fine[:-1]).abs().max()
    max_speed = float((amp * 2 * math.pi * torch.arange(16).view(-1, 1, 1, 1) / 150).sum(0).max())
    assert steps <= max_speed / 100 * 1.01


def texture_volume(h=8, w=9, seed=0, bins=16):
    g = torch.Generator().manual_seed(seed)
    coeffs = torch.complex(torch.randn(1, bins, 2, h, w, generator=g), torch.randn(1, bins, 2, h, w, generator=g)) * 20
    coeffs[:, 0] = coeffs[:, 0].real.to(torch.complex64)
    return SpectralVolume(coeffs)


def test_chunks_equal_whole_evaluation():
    motion = MotionTexture.from_volume(texture_volume(), 37, 24.0)
    whole = motion.fields(0, 37)
    pieces = torch.cat([f for _, f in motion.chunks(5)])
    assert torch.allclose(whole, pieces, atol=1e-5)


def test_long_large_textures_are_evaluated_in_bounded_chunks():
    volume = SpectralVolume(torch.zeros(1, 16, 2, 576, 1024, dtype=torch.complex64))
    motion = MotionTexture.from_volume(volume, 1000, 30.0)
    step = motion.chunk_frames()
    assert step < 1000
    assert step * 2 * 576 * 1024 * 4 <= 256 * 1024 * 1024
    first = next(motion.chunks())
    assert first[1].shape[0] == step


def test_loop_wraps_exactly_for_any_frame_count():
    for frames in (7, 48, 120, 151):
        motion = MotionTexture.from_volume(texture_volume(), frames, 30.0, loop=True)
        assert torch.allclose(motion.fields(frames, frames + 1), motion.fields(0, 1), atol=1e-3)
        cycles = motion.rates * frames
        assert torch.allclose(cycles, cycles.round(), atol=1e-9)
        assert (cycles[1:] >= 1).all()


def test_speed_half_is_the_same_trajectory_at_half_rate():
    volume = texture_volume()
    normal = MotionTexture.from_volume(volume, 40, 30.0, speed=1.0, loop=False)
    slow = MotionTexture.from_volume(volume, 80, 30.0, speed=0.5, loop=False)
    assert torch.allclose(slow.fields(0, 80)[::2], normal.fields(0, 40), atol=1e-4)
    # and speed 1 at 30 fps samples the volume at its own frames
    assert torch.allclose(normal.fields(0, 40), displacement_at(volume, torch.arange(40)).float(), atol=1e-4)


def test_start_offset_and_anchor():
    volume = texture_volume()
    later = MotionTexture.from_volume(volume, 10, 30.0, start_s=1.0, loop=False)
    assert torch.allclose(later.fields(0, 10), displacement_at(volume, torch.arange(30, 40)).float(), atol=1e-4)
    anchored = MotionTexture.from_volume(volume, 10, 30.0, anchored=True)
    assert torch.count_nonzero(anchored.fields(0, 3)[0]) == 0
    free = MotionTexture.from_volume(volume, 10, 30.0)
    assert torch.allclose(anchored.fields(0, 10), free.fields(0, 10) - free.fields(0, 1), atol=1e-4)


def test_calm_start_puts_the_wrap_at_the_slowest_step():
    volume = texture_volume(seed=4)
    motion = MotionTexture.from_volume(volume, 60, 30.0, loop=True, calm_start=True)
    fields = motion.fields(0, 61)
    steps = (fields[1:] - fields[:-1]).pow(2).sum(2).sqrt().mean(dim=(1, 2, 3))
    wrap = steps[-1]  # frame 59 -> frame 60 == frame 0
    assert wrap <= steps.median()


def test_invalid_motion_parameters():
    with pytest.raises(ValueError, match="^frames: 0 is out of range"):
        MotionTexture.from_volume(texture_volume(), 0, 30.0)
    with pytest.raises(ValueError, match="fps"):
        MotionTexture.from_volume(texture_volume(), 5, 0.0)
    with pytest.raises(ValueError, match="speed"):
        MotionTexture.from_volume(texture_volume(), 5, 30.0, speed=-1)
    with pytest.raises(ValueError, match="^fps: 1000.0 is out of range; allowed: >= 0.1 and <= 240"):
        MotionTexture.from_volume(texture_volume(), 5, 1000.0)


def test_mean_magnitude_is_time_average_of_flow_length():
    motion = MotionTexture.from_volume(texture_volume(), 32, 30.0)
    fields = motion.fields(0, 32)
    want = fields.pow(2).sum(2).sqrt().mean(0)
    assert torch.allclose(motion.mean_magnitude()[:, 0], want, rtol=1e-4, atol=1e-5)
