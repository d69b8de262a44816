import math

import pytest
import torch

from gid_engine.spectral.motion import displacement_at
from gid_engine.spectral.overlay import HEAT_PALETTE, motion_amplitude, motion_overlay, sway_covariance
from gid_engine.spectral.volume import SpectralVolume


def sway_volume(angle_deg: float, amplitude_px: float, h=32, w=48, bin_index=3, region=None) -> SpectralVolume:
    """Every pixel (or those in region) swings along angle_deg with the given amplitude, in one band."""
    period = 150
    coeffs = torch.zeros(1, 16, 2, h, w, dtype=torch.complex64)
    # A cosine of amplitude A in bin k has the unnormalised DFT coefficient A * N / 2.
    a = math.radians(angle_deg)
    value = amplitude_px * period / 2
    mask = torch.ones(h, w) if region is None else region
    coeffs[0, bin_index, 0] = value * math.cos(a) * mask
    coeffs[0, bin_index, 1] = value * math.sin(a) * mask
    return SpectralVolume(coeffs, fps=30.0, period=period)


def test_amplitude_is_the_peak_displacement_of_a_single_band_swing():
    volume = sway_volume(30, 2.5)
    amplitude = motion_amplitude(volume)
    assert amplitude.shape == (1, 32, 48)
    assert torch.allclose(amplitude, torch.full_like(amplitude, 2.5), rtol=1e-5)
    peak_seen = displacement_at(volume, torch.arange(150)).norm(dim=2).amax()
    assert math.isclose(float(peak_seen), 2.5, rel_tol=1e-4)


def test_covariance_gives_the_swing_axis():
    xx, yy, xy = sway_covariance(sway_volume(90, 1.0))[0, :, 0, 0].tolist()
    assert xx == pytest.approx(0, abs=1e-9) and xy == pytest.approx(0, abs=1e-9)
    assert yy == pytest.approx(0.5)  # time-average of cos^2 for a unit swing


def test_still_pixels_are_darkest_and_moving_ones_brightest():
    region = torch.zeros(32, 48)
    region[:, 24:] = 1
    overlay, peak = motion_overlay(sway_volume(0, 3.0, region=region), glyphs=False)
    assert overlay.shape == (1, 3, 32, 48) and peak.tolist() == pytest.approx([3.0])
    assert torch.allclose(overlay[0, :, 0, 0], torch.tensor(HEAT_PALETTE[0]))
    assert torch.allclose(overlay[0, :, 0, 40], torch.tensor(HEAT_PALETTE[-1]))


def test_glyphs_lie_along_the_motion():
    for angle, long_axis, short_axis in ((0, "cols", "rows"), (90, "rows", "cols")):
        plain, _ = motion_overlay(sway_volume(angle, 2.0), glyphs=False)
        drawn, _ = motion_overlay(sway_volume(angle, 2.0), glyphs=True, glyph_cell=16)
        rows, cols = (drawn != plain).any(dim=1)[0].nonzero(as_tuple=True)
        # In the first cell (0..15 x 0..15) the glyph is a line through its centre along the swing.
        in_cell = (rows < 16) & (cols < 16)
        spread = {"rows": rows[in_cell].float().std(), "cols": cols[in_cell].float().std()}
        assert spread[long_axis] > 3 and spread[short_axis] < 0.5, (angle, spread)


def test_overlay_keeps_the_picture_visible_and_checks_its_shape():
    picture = torch.zeros(1, 3, 16, 24)
    picture[:, :, :, 12:] = 1.0
    overlay, _ = motion_overlay(sway_volume(0, 1.0, h=8, w=12), picture, glyphs=False)
    assert overlay.shape == (1, 3, 16, 24)
    assert (overlay[0, :, :, 12:].mean() - overlay[0, :, :, :12].mean()) > 0.3
    with pytest.raises(ValueError, match="picture"):
        motion_overlay(sway_volume(0, 1.0), torch.zeros(2, 3, 16, 24))
    with pytest.raises(ValueError, match="picture"):
        motion_overlay(sway_volume(0, 1.0), torch.zeros(1, 4, 16, 24))
