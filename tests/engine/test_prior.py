import pytest
import torch

from gid_engine.spectral.motion import displacement_at
from gid_engine.spectral.normalization import natural_motion_spectrum
from gid_engine.sources.prior import ProceduralPrior


def stalk_picture(h=96, w=128):
    """A thin bright vertical stalk with leaves (fine texture) on a flat, dull background."""
    g = torch.Generator().manual_seed(0)
    img = torch.full((1, 3, h, w), 0.35)
    img[:, :, 10:90, 60:64] = torch.tensor([0.3, 0.8, 0.2]).view(1, 3, 1, 1)
    leaves = (torch.rand(1, 1, 30, 40, generator=g) > 0.5).float()
    img[:, :, 5:35, 42:82] = img[:, :, 5:35, 42:82] * (1 - leaves) + leaves * torch.tensor([0.2, 0.9, 0.2]).view(1, 3, 1, 1)
    region = torch.zeros(h, w, dtype=torch.bool)
    region[0:95, 36:90] = True
    return img, region


def test_deterministic_per_seed_and_different_across_seeds():
    img, _ = stalk_picture()
    prior = ProceduralPrior()
    a = prior.predict(img, seed=3)
    b = prior.predict(img, seed=3)
    c = prior.predict(img, seed=4)
    assert torch.equal(a.coeffs, b.coeffs)
    assert not torch.allclose(a.coeffs, c.coeffs)
    assert a.coeffs.shape == (1, 16, 2, 96, 128) and a.fps == 30.0 and a.period == 150


def test_trajectories_start_at_the_picture():
    img, _ = stalk_picture()
    v = ProceduralPrior().predict(img, seed=1)
    assert displacement_at(v, [0.0]).abs().max() < 1e-3


def test_masked_out_regions_have_exactly_zero_motion():
    img, _ = stalk_picture()
    mask = torch.ones(1, 1, 96, 128)
    mask[..., :, :64] = 0
    v = ProceduralPrior().predict(img, seed=0, mask=mask)
    assert torch.count_nonzero(v.coeffs[..., :64]) == 0
    assert torch.count_nonzero(v.coeffs[..., 64:]) > 0


def test_motion_concentrates_on_the_textured_stalk():
    img, region = stalk_picture()
    v = ProceduralPrior().predict(img, seed=0)
    energy = v.coeffs[:, 1:].abs().pow(2).sum(dim=(0, 1, 2))
    share = float(energy[region].sum() / energy.sum())
    assert share > 0.8, share


def test_band_profile_follows_the_measured_spectrum():
    img, _ = stalk_picture()
    amp = ProceduralPrior().predict(img, seed=0).band_amplitude()[0, 1:16]
    rms = torch.tensor(natural_motion_spectrum()["rms_per_bin"][1:16])
    corr = torch.corrcoef(torch.stack([amp.log(), rms.log()]))[0, 1]
    assert corr > 0.9


def test_intensity_scales_linearly_and_batches_work():
    img, _ = stalk_picture()
    batch = torch.cat([img, img.flip(-1)])
    prior = ProceduralPrior()
    v1 = prior.predict(batch, seed=0, intensity=1.0)
    v2 = prior.predict(batch, seed=0, intensity=2.0)
    assert v1.batch == 2
    assert torch.allclose(v2.coeffs, 2 * v1.coeffs, atol=1e-4)


@pytest.mark.parametrize("size", [(8, 8), (9, 300), (500, 31)])
def test_small_and_odd_sizes(size):
    img = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    v = ProceduralPrior().predict(img, seed=0)
    assert v.coeffs.shape[-2:] == size and torch.isfinite(torch.view_as_real(v.coeffs)).all()


def test_large_pictures_get_a_volume_of_bounded_size(monkeypatch):
    from gid_engine.sources.prior import model as prior_module

    img, _ = stalk_picture()
    mask = torch.ones(1, 1, 96, 128)
    mask[..., :, :64] = 0
    full = ProceduralPrior().predict(img, seed=0, mask=mask)
    monkeypatch.setattr(prior_module, "OUTPUT_LONG_SIDE", 64)  # as a 4K picture is to the real bound
    bounded = ProceduralPrior().predict(img, seed=0, mask=mask)
    assert bounded.coeffs.shape[-2:] == (48, 64)  # aspect kept
    assert torch.count_nonzero(bounded.coeffs[..., :32]) == 0 and torch.count_nonzero(bounded.coeffs[..., 33:]) > 0
    assert displacement_at(bounded, [0.0]).abs().max() < 1e-3
    # Brought back to the picture's grid (what a renderer does), it is the same motion.
    again = bounded.resize(96, 128).coeffs[..., 66:]
    assert torch.corrcoef(torch.stack([again.abs().flatten(), full.coeffs[..., 66:].abs().flatten()]))[0, 1] > 0.95
