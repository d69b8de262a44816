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


def _labelled(name):
    import json
    from pathlib import Path

    from gid_engine.loops.media import read_image

    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "pictures"
    entry = next(e for e in json.loads((folder / "labels.json").read_text()) if e["file"] == name)
    return read_image(folder / name).permute(0, 3, 1, 2), entry


def _in_boxes(values, boxes):
    return torch.cat([values[y0:y1, x0:x1].flatten() for x0, y0, x1, y1 in boxes])


@pytest.mark.parametrize("name", ["sheep_grass.jpg", "castle_forest.jpg", "hedgehog_grass.jpg", "horses_meadow.jpg"])
def test_labelled_still_things_stay_still_and_plants_move(name):
    picture, entry = _labelled(name)
    volume, mobility = ProceduralPrior().predict_with_mobility(picture, seed=0)
    rms = volume.rms_displacement()[0]
    # Most of every still thing is still (its rim may catch the ramp of the plants around it); plants move.
    still, moving = _in_boxes(rms, entry["still"]), _in_boxes(rms, entry["moves"])
    assert torch.quantile(still, 0.75) < 0.1 * moving.median()
    assert torch.quantile(_in_boxes(mobility[0, 0], entry["still"]), 0.75) < 0.1 < _in_boxes(mobility[0, 0], entry["moves"]).median()


def test_legs_stay_with_a_still_body():
    """A brown animal in grass: its body is a subject; its thin legs, which its outline leaves out and which look
    like stalks among plants, keep still with it."""
    h, w = 240, 320
    g = torch.Generator().manual_seed(5)
    picture = torch.tensor([0.25, 0.55, 0.15]).view(1, 3, 1, 1) * (0.6 + 0.4 * torch.rand(1, 1, h, w, generator=g))
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    body = (((xx - 160) / 60) ** 2 + ((yy - 110) / 28) ** 2) < 1
    legs = torch.zeros(h, w, dtype=torch.bool)
    for x in (115, 135, 180, 200):
        legs[125:185, x:x + 7] = True
    legs &= ~body
    hide = torch.tensor([0.55, 0.35, 0.2]).view(1, 3, 1, 1) * (0.9 + 0.1 * torch.rand(1, 1, h, w, generator=g))
    picture = torch.where((body | legs).view(1, 1, h, w), hide, picture)
    rms = ProceduralPrior().predict(picture, seed=0).rms_displacement()[0]
    grass = rms[200:].median()
    assert rms[body].quantile(0.9) < 0.05 * grass
    assert rms[legs].quantile(0.75) < 0.2 * grass  # the legs swayed as much as the grass (1.2x) before


def test_plants_bend_from_their_support():
    """A green bush standing on grey ground: its top sways more than its base."""
    picture = torch.full((1, 3, 96, 96), 0.45)
    g = torch.Generator().manual_seed(3)
    leaves = 0.5 + 0.5 * torch.rand(1, 1, 60, 40, generator=g)
    picture[:, :, 20:80, 28:68] = torch.tensor([0.2, 0.55, 0.15]).view(1, 3, 1, 1) * leaves
    volume, _ = ProceduralPrior().predict_with_mobility(picture, seed=0)
    rms = volume.rms_displacement()[0]
    top, base = rms[26:40, 34:62].mean(), rms[64:76, 34:62].mean()
    assert top > 1.3 * base


def test_a_crown_rising_from_the_bottom_edge_sways_most_at_its_top():
    """A tree held below the frame (its crown rises from the bottom edge against the sky) bends like a cantilever;
    a meadow that ends low in the picture, grass that fills the frame and grass below a flower head are no crown."""
    from gid_engine.sources.prior.mobility import CROWN_BASE, crown_growth

    crown = torch.zeros(100, 80, dtype=torch.bool)
    crown[25:, 20:60] = True
    factor = crown_growth(crown)
    assert factor[99, 40] == pytest.approx(CROWN_BASE, abs=0.01)
    assert factor[26, 40] > 0.95 and factor[99, 40] < factor[70, 40] < factor[40, 40] < factor[26, 40]
    meadow = torch.zeros(100, 80, dtype=torch.bool)
    meadow[70:] = True
    field = torch.ones(100, 80, dtype=torch.bool)
    below_a_flower = field.clone()
    below_a_flower[30:50] = False  # a still flower head with more grass above it
    assert all(bool((crown_growth(m) == 1).all()) for m in (meadow, field, below_a_flower))
