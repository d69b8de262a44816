import torch

from gid_engine.formats import read_config

from gid_engine.spectral.normalization import FrequencyNormalization
from gid_engine.spectral.volume import SpectralVolume


def gaussian_volume(sigma, h=64, w=64, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    k = len(sigma)
    s = torch.tensor(sigma, dtype=dtype).view(1, k, 1, 1, 1)
    re = torch.randn(1, k, 2, h, w, generator=g, dtype=dtype) * s / 2 ** 0.5
    im = torch.randn(1, k, 2, h, w, generator=g, dtype=dtype) * s / 2 ** 0.5
    im[:, 0] = 0
    re[:, 0] *= 2 ** 0.5
    return SpectralVolume(torch.complex(re, im), period=150)


def test_round_trip_is_exact_to_float_precision():
    norm = FrequencyNormalization.default()
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-13)):
        v = gaussian_volume([30.0] + [10.0 / (k + 1) for k in range(15)], w=256, dtype=dtype)
        y = norm.normalize(v)
        back = norm.denormalize(y, fps=v.fps, period=v.period)
        rel = ((back.coeffs - v.coeffs).abs() / v.coeffs.abs().clamp(min=1e-3)).max()
        assert rel < tol, (dtype, rel)


def test_power_transform_definition():
    norm = FrequencyNormalization((2.0,) * 16, width=8, period=150)
    coeffs = torch.zeros(1, 16, 2, 1, 8, dtype=torch.complex64)
    coeffs[0, 3, 0, 0, 0] = -8 + 0.5j
    y = norm.normalize(SpectralVolume(coeffs))
    assert torch.isclose(y[0, 12, 0, 0], torch.tensor(-2.0))  # sign(-8) * sqrt(8 / 2)
    assert torch.isclose(y[0, 13, 0, 0], torch.tensor(0.5))  # sqrt(0.5 / 2)


def test_default_scales_come_from_the_measured_spectrum():
    norm = FrequencyNormalization.default()
    assert len(norm.scales) == 16 and (norm.width, norm.period) == (256, 149)
    assert all(s > 0 for s in norm.scales)
    assert norm.scales[1] > norm.scales[8] > norm.scales[15]
    # bin 1: 95th percentile of |component|; the measured rms 13.72 is already per real component (Re and Im of
    # x and y pooled); DC is real, so its real parts carry all of its power
    assert abs(norm.scales[1] - 1.96 * 13.724528) < 1e-3
    assert abs(norm.scales[0] / (1.96 * 34.355961 * 2 ** 0.5) - 1) < 1e-4


def test_scales_recomputed_from_volumes_are_95th_percentiles():
    sigma = [40.0] + [12.0] * 15
    vols = [gaussian_volume(sigma, seed=i) for i in range(3)]
    norm = FrequencyNormalization.from_volumes(vols)
    # 95th percentile of |N(0, s^2/2)| per component = 1.96 * s / sqrt(2); DC is real with variance s^2
    assert abs(norm.scales[0] - 1.96 * 40.0) / (1.96 * 40) < 0.03
    assert abs(norm.scales[5] - 1.96 * 12 / 2 ** 0.5) / (1.96 * 12 / 2 ** 0.5) < 0.03
    y = norm.normalize(vols[0])
    share_above_one = float((y.abs() > 1).float().mean())
    assert 0.03 < share_above_one < 0.07  # the paper: about 5 % exceed 1, never clipped


def test_scales_follow_the_grid():
    norm = FrequencyNormalization((1.0,) * 16, width=256, period=150)
    coeffs = torch.zeros(1, 16, 2, 2, 512, dtype=torch.complex64)
    assert torch.allclose(norm.scales_for(SpectralVolume(coeffs)), torch.full((16,), 2.0, dtype=torch.float64))
    text = norm.to_json()
    assert read_config(FrequencyNormalization, text) == norm
