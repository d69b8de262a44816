import math

import pytest
import torch

from gid_engine.spectral.motion import displacement_at
from gid_engine.spectral.volume import SpectralVolume, at_rest_dc, coherence_length, synthesis_weights


def random_volume(b=1, k=16, h=12, w=20, seed=0, dtype=torch.complex64):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(b, k, 2, h, w, generator=g, dtype=torch.float64)
    imag = torch.randn(b, k, 2, h, w, generator=g, dtype=torch.float64)
    return SpectralVolume(torch.complex(real, imag).to(dtype), fps=30.0, period=150)


def test_meaning_of_bins():
    v = random_volume()
    assert v.num_bins == 16 and (v.height, v.width) == (12, 20)
    assert v.frequencies_hz[0] == 0.0
    assert math.isclose(v.frequencies_hz[1], 0.2) and math.isclose(v.frequencies_hz[15], 3.0)
    assert math.isclose(v.duration_s, 5.0)


@pytest.mark.parametrize("bad", [
    dict(coeffs=torch.zeros(1, 16, 2, 4, 4)),  # real, not complex
    dict(coeffs=torch.zeros(16, 2, 4, 4, dtype=torch.complex64)),  # no batch axis
    dict(coeffs=torch.zeros(1, 16, 3, 4, 4, dtype=torch.complex64)),  # not x/y
    dict(coeffs=torch.zeros(1, 16, 2, 4, 4, dtype=torch.complex64), period=20),  # bins above Nyquist
    dict(coeffs=torch.zeros(1, 16, 2, 4, 4, dtype=torch.complex64), fps=0.0),
])
def test_invalid_volumes_are_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        SpectralVolume(**bad)


def test_channel_layout_round_trip_and_order():
    v = random_volume(b=2)
    ch = v.to_channels()
    assert ch.shape == (2, 64, 12, 20)
    k = 3
    assert torch.equal(ch[:, 4 * k + 0], v.coeffs[:, k, 0].real)
    assert torch.equal(ch[:, 4 * k + 1], v.coeffs[:, k, 0].imag)
    assert torch.equal(ch[:, 4 * k + 2], v.coeffs[:, k, 1].real)
    assert torch.equal(ch[:, 4 * k + 3], v.coeffs[:, k, 1].imag)
    back = SpectralVolume.from_channels(ch, fps=v.fps, period=v.period)
    assert torch.equal(back.coeffs, v.coeffs)


def test_resize_scales_vectors_with_the_grid():
    coeffs = torch.zeros(1, 16, 2, 10, 20, dtype=torch.complex64)
    coeffs[:, 1, 0] = 1 + 2j  # uniform x motion
    coeffs[:, 1, 1] = 3 - 1j  # uniform y motion
    v = SpectralVolume(coeffs).resize(30, 40)  # height x3, width x2
    assert v.coeffs.shape == (1, 16, 2, 30, 40)
    assert torch.allclose(v.coeffs[:, 1, 0], torch.full((1, 30, 40), 2 * (1 + 2j), dtype=torch.complex64))
    assert torch.allclose(v.coeffs[:, 1, 1], torch.full((1, 30, 40), 3 * (3 - 1j), dtype=torch.complex64))
    down = SpectralVolume(coeffs).resize(5, 10)
    assert torch.allclose(down.coeffs[:, 1, 0], torch.full((1, 5, 10), 0.5 * (1 + 2j), dtype=torch.complex64))


def test_device_and_dtype_moves():
    v = random_volume()
    assert v.to(dtype=torch.float64).coeffs.dtype == torch.complex128
    assert v.to(device="cpu").device.type == "cpu"
    if torch.cuda.is_available():
        assert v.to("cuda").device.type == "cuda"


def test_safetensors_round_trip_keeps_metadata(tmp_path):
    v = random_volume(b=2).replace(fps=24.0, period=96, metadata={"source": "test", "seed": 7})
    path = v.save(tmp_path / "v.safetensors", extra_metadata={"note": "hello"})
    back = SpectralVolume.load(path)
    assert torch.equal(back.coeffs, v.coeffs)
    assert back.fps == 24.0 and back.period == 96
    assert back.metadata == {"source": "test", "seed": 7, "note": "hello"}


def test_loading_bad_files_gives_clear_errors(tmp_path):
    path = random_volume().save(tmp_path / "v.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="cannot read spectral volume"):
        SpectralVolume.load(truncated)
    from safetensors.torch import save_file
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something else"})
    with pytest.raises(ValueError, match="not a GID spectral volume"):
        SpectralVolume.load(other)


def test_band_amplitude_matches_a_pure_sinusoid():
    coeffs = torch.zeros(1, 16, 2, 4, 4, dtype=torch.complex64)
    coeffs[:, 2, 0] = 150 / 2 * 3.0  # a 3 px amplitude sine in x at bin 2 (unnormalised FFT of T=150)
    amp = SpectralVolume(coeffs).band_amplitude()
    assert math.isclose(float(amp[0, 2]), 3.0, rel_tol=1e-6)
    assert float(amp[0, 1]) == 0.0


def sinusoid_volume(amplitude_px=3.0, k=2, period=150):
    coeffs = torch.zeros(1, 16, 2, 4, 4, dtype=torch.complex64)
    coeffs[:, k, 0] = period / 2 * amplitude_px  # amplitude_px pixels in x at bin k
    coeffs[:, 0] = at_rest_dc(coeffs)
    return SpectralVolume(coeffs, period=period)


def test_synthesis_weights_are_the_one_sided_inverse_dft():
    weights = synthesis_weights(4, 10, torch.float64)
    assert weights.tolist() == [0.1, 0.2, 0.2, 0.2]
    # Re-synthesising a real signal from its first bins with these weights gives it back exactly.
    t = torch.arange(10, dtype=torch.float64)
    signal = 1.5 + 2 * torch.cos(2 * math.pi * t / 10 + 0.3) - 0.5 * torch.sin(2 * math.pi * 3 * t / 10)
    spectrum = torch.fft.fft(signal)[:4]
    angle = 2 * math.pi * t[:, None] * torch.arange(4, dtype=torch.float64)[None, :] / 10
    again = (weights * (spectrum * torch.polar(torch.ones_like(angle), angle))).real.sum(dim=1)
    assert torch.allclose(again, signal, atol=1e-12)


def test_at_rest_dc_puts_frame_zero_at_the_picture_or_at_a_reference():
    g = torch.Generator().manual_seed(0)
    coeffs = torch.complex(torch.randn(1, 6, 2, 3, 5, generator=g), torch.randn(1, 6, 2, 3, 5, generator=g)) * 30
    coeffs[:, 0] = at_rest_dc(coeffs)
    rested = SpectralVolume(coeffs, period=20)
    assert displacement_at(rested, [0.0]).abs().max() < 1e-5
    reference = SpectralVolume(torch.complex(torch.randn(1, 6, 2, 3, 5, generator=g),
                                             torch.randn(1, 6, 2, 3, 5, generator=g)) * 30, period=20)
    coeffs[:, 0] = at_rest_dc(coeffs, reference=reference.coeffs)
    assert torch.allclose(displacement_at(rested.replace(coeffs=coeffs), [0.0]), displacement_at(reference, [0.0]),
                          atol=1e-4)


def test_amplitudes_of_a_pure_sinusoid():
    volume = sinusoid_volume(3.0)
    # Peak: the 3 px sway plus the 0 Hz offset that keeps frame 0 at rest (another 3 px).
    assert torch.allclose(volume.peak_displacement(), torch.full((1, 4, 4), 6.0))
    assert torch.allclose(volume.peak_displacement(include_dc=False), torch.full((1, 4, 4), 3.0))
    # Time-RMS of a sine of amplitude A is A / sqrt(2), measured here against the synthesised trajectory.
    fields = displacement_at(volume, torch.arange(150))[:, 0]  # [T, 2, H, W]
    measured = (fields - fields.mean(dim=0)).pow(2).sum(dim=1).mean(dim=0).sqrt()
    assert torch.allclose(volume.rms_displacement()[0], measured.float(), rtol=1e-4)
    assert math.isclose(float(volume.rms_displacement()[0, 0, 0]), 3.0 / math.sqrt(2), rel_tol=1e-5)


def test_coherence_length_scales_with_the_picture_and_shrinks_with_frequency():
    lengths = [coherence_length(400, k) for k in range(1, 16)]
    assert all(a > b for a, b in zip(lengths, lengths[1:])) and 0 < lengths[-1] < lengths[0] <= 100
    assert all(math.isclose(coherence_length(800, k), 2 * coherence_length(400, k)) for k in range(1, 16))


def test_resize_bin_by_bin_matches_resampling_all_planes_at_once():
    volume = random_volume(b=2, k=5, h=12, w=20)
    for size in ((30, 41), (5, 7)):
        got = volume.resize(*size).coeffs
        # Reference: every real plane in one interpolate call, vectors scaled after.
        planes = torch.view_as_real(volume.coeffs).permute(0, 1, 2, 5, 3, 4).reshape(2, 20, 12, 20)
        planes = torch.nn.functional.interpolate(planes.float(), size=size, mode="bilinear", align_corners=False,
                                                 antialias=size[0] < 12)
        want = torch.view_as_complex(planes.reshape(2, 5, 2, 2, *size).permute(0, 1, 2, 4, 5, 3).contiguous())
        want = want * torch.tensor([size[1] / 20, size[0] / 12]).view(1, 1, 2, 1, 1)
        assert got.dtype == volume.coeffs.dtype and torch.allclose(got, want.to(got.dtype), atol=1e-5)
