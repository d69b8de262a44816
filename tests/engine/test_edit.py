"""Band edits of spectral volumes, and time controls of the motion texture."""
import json
import math

import pytest
import torch

from gid_engine.spectral.edit import SpectrumEdit, apply_edit, feathered, spectrum_report
from gid_engine.spectral.motion import MotionTexture, displacement_at
from gid_engine.sources.prior import ProceduralPrior
from gid_engine.spectral.volume import SpectralVolume, at_rest_dc


def random_volume(b=1, h=24, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    coeffs = torch.complex(torch.randn(b, 16, 2, h, w, generator=g), torch.randn(b, 16, 2, h, w, generator=g)) * 20
    coeffs[:, 0] = at_rest_dc(coeffs)  # frame 0 at rest, like every real volume
    return SpectralVolume(coeffs)


def fields(volume, times=(0.0, 7.0, 31.5, 100.0)):
    return displacement_at(volume, list(times))


@pytest.mark.parametrize("edit", ["{}", "", json.dumps({"gains": [1.0] * 16}),
                                  json.dumps({"gains": [1] * 16, "magnify": 1, "rotate_deg": 0, "freeze": False,
                                              "reseed_amount": 1, "ui": {"selected": 3}})])
def test_identity_edits_are_exact(edit):
    v = random_volume()
    out = apply_edit(v, edit)
    assert torch.equal(out.coeffs, v.coeffs)
    mask = torch.rand(1, 1, 24, 32)
    assert torch.equal(apply_edit(v, edit, mask).coeffs, v.coeffs)


def test_magnify_scales_every_displacement():
    v = random_volume()
    for a in (0.0, 0.5, 2.5):
        out = apply_edit(v, {"magnify": a})
        assert torch.allclose(fields(out), a * fields(v), atol=1e-4)


def test_gains_scale_their_bands_and_keep_frame_zero_at_rest():
    v = random_volume()
    gains = [1.0] * 16
    gains[3], gains[9] = 0.0, 2.0
    out = apply_edit(v, {"gains": gains})
    assert torch.count_nonzero(out.coeffs[:, 3]) == 0
    assert torch.allclose(out.coeffs[:, 9], 2 * v.coeffs[:, 9])
    assert torch.equal(out.coeffs[:, 5], v.coeffs[:, 5])
    assert fields(out, [0.0]).abs().max() < 1e-3
    amp_in, amp_out = v.band_amplitude()[0], out.band_amplitude()[0]
    assert torch.allclose(amp_out[9], 2 * amp_in[9]) and amp_out[3] == 0


def test_damping_high_bands_keeps_low_ones():
    v = random_volume()
    out = apply_edit(v, {"damp_above_hz": 1.0, "damp_power": 2})
    amp_in, amp_out = v.band_amplitude()[0], out.band_amplitude()[0]
    hz = v.frequencies_hz
    for k in range(1, 16):
        expected = 1.0 if hz[k] <= 1.0 else (1.0 / hz[k]) ** 2
        assert math.isclose(float(amp_out[k] / amp_in[k]), expected, rel_tol=1e-4)


def test_restrict_and_rotate_direction():
    v = random_volume()
    vertical = fields(apply_edit(v, {"restrict_deg": 90}))
    assert vertical[:, :, 0].abs().max() < 1e-4 and torch.allclose(vertical[:, :, 1], fields(v)[:, :, 1], atol=1e-4)
    rotated = fields(apply_edit(v, {"rotate_deg": 90}))
    original = fields(v)
    assert torch.allclose(rotated[:, :, 0], -original[:, :, 1], atol=1e-3)
    assert torch.allclose(rotated[:, :, 1], original[:, :, 0], atol=1e-3)
    half = fields(apply_edit(v, {"restrict_deg": 0, "restrict_strength": 0.5}))
    assert torch.allclose(half[:, :, 1], 0.5 * original[:, :, 1], atol=1e-3)


def test_reseed_keeps_amplitudes_changes_timing_and_is_deterministic():
    v = ProceduralPrior().predict(torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(1)), seed=0)
    a = apply_edit(v, {"reseed": 7})
    b = apply_edit(v, {"reseed": 7})
    c = apply_edit(v, {"reseed": 8})
    assert torch.equal(a.coeffs, b.coeffs) and not torch.allclose(a.coeffs, c.coeffs)
    assert torch.allclose(a.coeffs[:, 1:].abs(), v.coeffs[:, 1:].abs(), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a.coeffs[:, 1:], v.coeffs[:, 1:], atol=1e-2)
    assert fields(a, [0.0]).abs().max() < 1e-3


def test_mask_restricts_the_change_to_the_mask():
    v = random_volume()
    mask = torch.zeros(1, 1, 24, 32)
    mask[..., :, 10:20] = 1
    out = apply_edit(v, {"magnify": 3, "rotate_deg": 30}, mask)
    outside = (mask == 0).unsqueeze(1).expand_as(v.coeffs)
    assert torch.equal(out.coeffs[outside], v.coeffs[outside])
    assert torch.allclose(fields(out)[..., 10:20], fields(apply_edit(v, {"magnify": 3, "rotate_deg": 30}))[..., 10:20])
    inverted = apply_edit(v, {"magnify": 3, "invert_mask": True}, mask)
    assert torch.equal(inverted.coeffs[..., 10:20], v.coeffs[..., 10:20])


def test_freeze_inside_a_feathered_mask_is_exactly_still_inside_and_untouched_far_outside():
    v = random_volume(h=64, w=64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    out = apply_edit(v, {"freeze": True, "feather_px": 8}, mask)
    assert torch.count_nonzero(out.coeffs[..., 24:40, 24:40]) == 0
    assert torch.equal(out.coeffs[..., :, :6], v.coeffs[..., :, :6])
    edge = out.coeffs[0, 1, 0, 32, 10:22].abs() / v.coeffs[0, 1, 0, 32, 10:22].abs()
    assert edge[0] > 0.99 and edge[-1] < 0.01 and 0.05 < edge[6] < 0.95  # a soft ramp across the edge


def test_feathered_mask_reaches_both_ends_exactly():
    mask = torch.zeros(1, 1, 40, 40)
    mask[..., 10:30, 10:30] = 1
    soft = feathered(mask, 6)
    assert soft[0, 0, 20, 20] == 1 and soft[0, 0, 0, 0] == 0 and 0 < soft[0, 0, 20, 10] < 1


def test_batch_volumes_and_per_item_masks():
    v = random_volume(b=2)
    mask = torch.zeros(2, 1, 24, 32)
    mask[1] = 1
    out = apply_edit(v, {"magnify": 2}, mask)
    assert torch.equal(out.coeffs[0], v.coeffs[0]) and torch.allclose(out.coeffs[1], 2 * v.coeffs[1])


@pytest.mark.parametrize("edit, needle", [
    ("{nope", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"gain": [1]}', "unknown key(s) 'gain'"),
    ('{"magnify": -1}', "'magnify': -1.0 is out of range; allowed: >= 0 and <= 1000"),
    ('{"magnify": "2"}', "'magnify': expected a number, got '2'"),
    ('{"magnify": 1e30}', "'magnify': 1e+30 is out of range; allowed: >= 0 and <= 1000"),
    ('{"gains": [1, 1, 1e30]}', "'gains'[2]: 1e+30 is out of range; allowed: >= 0 and <= 1000"),
    ('{"restrict_deg": 1e308}', "'restrict_deg': 1e+308 is out of range; allowed: >= -360 and <= 360"),
    ('{"rotate_deg": -1e308}', "'rotate_deg': -1e+308 is out of range; allowed: >= -360 and <= 360"),
    ('{"reseed": 100000000000000000000000000000}', "'reseed': 100000000000000000000000000000 is out of range; "
                                                   "allowed: >= 0 and <= 18446744073709551615"),
    ('{"feather_px": 1e9}', "'feather_px': 1000000000.0 is out of range"),
    ('{"damp_power": 1e308}', "'damp_power': 1e+308 is out of range"),
    ('{"gains": [1, 1]}', "'gains' has 2 values but the spectral volume has 16 bands"),
    ('{"restrict_strength": 2}', "'restrict_strength': 2.0 is out of range; allowed: >= 0 and <= 1"),
    ('{"reseed": 1.5}', "'reseed': expected a whole number"),
    ('{"reseed": -1}', "'reseed': -1 is out of range"),
    ('{"freeze": 1}', "'freeze' must be true or false"),
    ('{"damp_above_hz": 0}', "'damp_above_hz': 0.0 is out of range; allowed: > 0 and <= 1000"),
])
def test_bad_edits_name_the_key(edit, needle):
    with pytest.raises(ValueError, match="edit: ") as err:
        apply_edit(random_volume(), edit)
    assert needle in str(err.value)


def test_edges_of_the_ranges_work():
    volume = random_volume()
    gains = [1000.0] + [0.0] * 15
    for edit in ({"magnify": 1000, "gains": gains}, {"rotate_deg": -360, "restrict_deg": 360},
                 {"reseed": 2 ** 64 - 1}, {"damp_above_hz": 1000, "damp_power": 100}, {"feather_px": 4096}):
        out = apply_edit(volume, edit)
        assert torch.isfinite(torch.view_as_real(out.coeffs)).all(), edit


def test_an_edit_that_overflows_a_huge_volume_is_an_error():
    volume = SpectralVolume(torch.full((1, 16, 2, 4, 4), 1e36, dtype=torch.complex64))
    with pytest.raises(ValueError, match="edit: the edited spectral volume .* NaN or infinite"):
        apply_edit(volume, {"magnify": 1000})


def test_inverting_a_missing_mask_is_an_error():
    with pytest.raises(ValueError, match="'invert_mask' is true but no mask"):
        apply_edit(random_volume(), {"invert_mask": True, "magnify": 2})


def test_spectrum_report_has_the_editor_keys():
    v = random_volume(b=2)
    out = apply_edit(v, {"magnify": 0.5})
    report = spectrum_report(v, out)
    assert len(report) == 2
    entry = report[1]
    assert set(entry) == {"frequencies_hz", "energy_in", "energy_out", "total_amplitude_px"}
    assert len(entry["frequencies_hz"]) == 16 and entry["frequencies_hz"][1] == pytest.approx(0.2)
    assert entry["energy_out"][4] == pytest.approx(0.5 * entry["energy_in"][4], rel=1e-5)
    assert isinstance(entry["total_amplitude_px"], float) and entry["total_amplitude_px"] > 0
    json.dumps(report)


def test_parse_accepts_a_dict_and_none():
    assert SpectrumEdit.parse(None) == SpectrumEdit()
    assert SpectrumEdit.parse({"magnify": 2}).magnify == 2.0


def test_speed_half_is_the_same_trajectory_at_half_rate():
    v = random_volume()
    normal = MotionTexture.from_volume(v, 60, 30.0, speed=1.0, loop=False)
    slow = MotionTexture.from_volume(v, 120, 30.0, speed=0.5, loop=False)
    assert torch.allclose(slow.fields(0, 120)[0::2], normal.fields(0, 60), atol=1e-3)
    # Odd slow frames fall halfway between two normal ones: the series evaluated at fractional time.
    assert torch.allclose(slow.fields(0, 120)[1::2], displacement_at(v, [i + 0.5 for i in range(60)]), atol=1e-3)


def test_start_offset_shifts_time():
    v = random_volume()
    shifted = MotionTexture.from_volume(v, 10, 30.0, start_s=1.0, loop=False)
    assert torch.allclose(shifted.fields(0, 10), displacement_at(v, [30.0 + i for i in range(10)]), atol=1e-3)
