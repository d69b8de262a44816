"""The built-in prior's presets and its plausibility on synthetic pictures with a known answer."""
import math

import pytest
import torch

from gid_engine.spectral.motion import MotionTexture, displacement_at
from gid_engine.spectral.normalization import natural_motion_spectrum
from gid_engine.sources.prior import PRESETS, ProceduralPrior
from gid_engine.render.renderer import importance_metric
from gid_engine.render.splat import softmax_splat

GREEN = torch.tensor([0.25, 0.7, 0.2]).view(1, 3, 1, 1)


def noise(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def stalk_on_flat_background(h=96, w=128):
    """A 3-pixel bright stalk, slightly bent, on a flat dull background; the region around it is expected."""
    img = torch.full((1, 3, h, w), 0.3)
    region = torch.zeros(h, w, dtype=torch.bool)
    for y in range(8, 90):
        x = 62 + round(6 * math.sin(y / 30))
        img[0, :, y, x - 1:x + 2] = torch.tensor([0.6, 0.85, 0.4]).view(3, 1)
        region[max(0, y - 8):y + 9, x - 10:x + 11] = True
    return img, region


def water_under_sky(h=96, w=128):
    """Smooth pale sky over a darker blue band of rippling horizontal streaks."""
    rows = torch.linspace(0, 1, h).view(1, 1, h, 1)
    img = (0.75 + 0.15 * rows).expand(1, 3, h, w) * torch.tensor([0.85, 0.92, 1.0]).view(1, 3, 1, 1)
    img = img.clone()
    water = torch.zeros(h, w, dtype=torch.bool)
    water[h // 2:] = True
    y = torch.arange(h // 2, h, dtype=torch.float32).view(-1, 1)
    x = torch.arange(w, dtype=torch.float32).view(1, -1)
    ripples = 0.5 + 0.5 * torch.sin(y * 1.3 + 0.6 * torch.sin(x / 9) + 2 * noise((h - h // 2, w), 1))
    img[0, :, h // 2:] = torch.tensor([0.15, 0.3, 0.45]).view(3, 1, 1) + 0.25 * ripples
    return img.clamp(0, 1), water


def textured_square(size, h=160, w=240):
    """One leafy green square of the given side, centred on flat grey."""
    img = torch.full((1, 3, h, w), 0.45)
    top, left = (h - size) // 2, (w - size) // 2
    leaves = 0.6 + 0.5 * noise((1, 1, size, size), size)
    img[:, :, top:top + size, left:left + size] = GREEN * leaves
    return img.clamp(0, 1), (top, left)


def energy_share(volume, region):
    energy = volume.coeffs[:, 1:].abs().pow(2).sum(dim=(0, 1, 2))
    return float(energy[region].sum() / energy.sum())


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_is_deterministic_finite_and_anchored(preset):
    img, _ = water_under_sky()
    prior = ProceduralPrior(preset=preset)
    a, b = prior.predict(img, seed=5), prior.predict(img, seed=5)
    assert torch.equal(a.coeffs, b.coeffs) and torch.isfinite(torch.view_as_real(a.coeffs)).all()
    assert a.metadata["preset"] == preset
    assert displacement_at(a, [0.0]).abs().max() < 1e-4


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="preset.*'wind'.*known: auto"):
        ProceduralPrior(preset="wind")


@pytest.mark.parametrize("preset", ["auto", "foliage", "cloth and hair"])
def test_band_profile_matches_the_natural_spectrum(preset):
    img, _ = stalk_on_flat_background()
    amp = ProceduralPrior(preset=preset).predict(img, seed=2).band_amplitude()[0, 1:16]
    rms = torch.tensor(natural_motion_spectrum()["rms_per_bin"][1:16])
    assert torch.corrcoef(torch.stack([amp.log(), rms.log()]))[0, 1] > 0.9


def candle(h=96, w=128):
    """A warm, bright flame on a dark background."""
    img = torch.full((1, 3, h, w), 0.08)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    flame = torch.exp(-((xx - 64) / 7) ** 2 - ((yy - 45) / 18) ** 2)
    img = img + flame * torch.tensor([0.95, 0.55, 0.1]).view(1, 3, 1, 1)
    return img.clamp(0, 1), flame > 0.2


def test_presets_have_their_own_frequency_character():
    def high_share(preset, img):
        amp = ProceduralPrior(preset=preset).predict(img, seed=0).band_amplitude()[0, 1:]
        return float(amp[8:].sum() / amp.sum())

    scene, _ = water_under_sky()
    flame, _ = candle()
    assert high_share("flame flicker", flame) > high_share("auto", scene) > high_share("clouds drift", scene)


def test_flames_flicker_where_the_flame_is():
    img, flame = candle()
    v = ProceduralPrior(preset="flame flicker").predict(img, seed=0)
    assert energy_share(v, flame) > 0.8
    # Flames rise: the vertical component dominates.
    assert v.coeffs[:, 1:, 1].abs().pow(2).sum() > 2 * v.coeffs[:, 1:, 0].abs().pow(2).sum()


def test_masked_out_regions_are_exactly_still_for_every_preset():
    img, _ = water_under_sky()
    mask = torch.zeros(1, 1, 96, 128)
    mask[..., 20:70, 30:100] = 1
    for preset in PRESETS:
        v = ProceduralPrior(preset=preset).predict(img, seed=0, mask=mask)
        assert torch.count_nonzero(v.coeffs * (1 - mask).unsqueeze(1)) == 0, preset


def test_motion_lies_on_the_stalk():
    img, region = stalk_on_flat_background()
    assert energy_share(ProceduralPrior().predict(img, seed=0), region) > 0.8


@pytest.mark.parametrize("preset", ["auto", "water ripples"])
def test_motion_lies_in_the_water_not_the_sky(preset):
    img, water = water_under_sky()
    assert energy_share(ProceduralPrior(preset=preset).predict(img, seed=0), water) > 0.8


def castle_by_a_lake(h=120, w=160):
    """Sky, a brick building with towers and windows on a bank, and below the bank its darker mirror image."""
    upper = torch.zeros(3, h // 2, w)
    upper[:] = torch.tensor([0.55, 0.7, 0.9]).view(3, 1, 1)
    for left, right, top in ((20, 50, 12), (50, 110, 26), (110, 135, 8)):
        upper[:, top:h // 2 - 6, left:right] = torch.tensor([0.65, 0.3, 0.2]).view(3, 1, 1)
        for y in range(top + 4, h // 2 - 10, 8):
            for x in range(left + 4, right - 4, 8):
                upper[:, y:y + 4, x:x + 3] = 0.15
    upper[:, h // 2 - 6:] = torch.tensor([0.3, 0.5, 0.2]).view(3, 1, 1)
    lower = upper.flip(1) * torch.tensor([0.6, 0.65, 0.75]).view(3, 1, 1)
    water = torch.zeros(h, w, dtype=torch.bool)
    water[h // 2:] = True
    return torch.cat([upper, lower], dim=1).unsqueeze(0), water


def test_a_lake_that_mirrors_its_shore_ripples_and_the_shore_stays():
    from gid_engine.sources.prior.cues import MotionCues

    img, water = castle_by_a_lake()
    assert abs(MotionCues(img).waterline - 60) <= 2
    volume = ProceduralPrior().predict(img, seed=0)
    assert energy_share(volume, water) > 0.9
    # Ripples bob: the vertical component leads, as in the water preset.
    lake = volume.coeffs[0, 1:, :, 70:]
    assert lake[:, 1].abs().pow(2).sum() > 1.5 * lake[:, 0].abs().pow(2).sum()


def test_clouds_drift_moves_the_sky_only():
    img, water = water_under_sky()
    assert energy_share(ProceduralPrior(preset="clouds drift").predict(img, seed=0), ~water) > 0.8


def correlation_length(size, band=4, seeds=4):
    """Horizontal separation (pixels) at which the coefficients of one object decorrelate to 0.5."""
    img, (top, left) = textured_square(size)
    inner = slice(top + size // 4, top + size - size // 4)
    sums = torch.zeros(size, dtype=torch.complex64)
    power = 0.0
    for seed in range(seeds):
        c = ProceduralPrior().predict(img, seed=seed).coeffs[0, band, 0, inner, left:left + size]
        c = c / c.abs().clamp(min=1e-12)  # phase only: amplitude varies on purpose (anchoring, tips)
        power += float(c.abs().pow(2).mean())
        for d in range(size):
            sums[d] += (c[:, d:] * c[:, :size - d].conj()).mean()
    corr = (sums.abs() / power).tolist()
    below = next((d for d, value in enumerate(corr) if value < 0.5), size)
    return below


def test_phase_correlation_length_grows_with_object_size():
    lengths = [correlation_length(size) for size in (12, 24, 48, 96)]
    # Four times the size, a longer coherence (neighbouring sizes may tie: anchoring bends the phase of tall
    # objects along their height, which shortens what this horizontal measure sees).
    assert lengths[0] < lengths[2] and lengths[1] < lengths[3], lengths


def test_separate_objects_move_independently_and_one_object_together():
    img = torch.full((1, 3, 96, 160), 0.45)
    img[:, :, 28:68, 10:50] = GREEN * (0.6 + 0.5 * noise((1, 1, 40, 40), 1))
    img[:, :, 28:68, 110:150] = GREEN * (0.6 + 0.5 * noise((1, 1, 40, 40), 2))
    band = 3
    left, right, left2 = [], [], []
    for seed in range(12):
        c = ProceduralPrior().predict(img.clamp(0, 1), seed=seed).coeffs[0, band, 0]
        left.append(c[40:56, 18:26].mean())
        left2.append(c[40:56, 28:36].mean())
        right.append(c[40:56, 118:126].mean())
    left, left2, right = torch.stack(left), torch.stack(left2), torch.stack(right)

    def corr(a, b):
        return float((a * b.conj()).mean().abs() / (a.abs().pow(2).mean() * b.abs().pow(2).mean()).sqrt())

    assert corr(left, left2) > 0.7
    assert corr(left, right) < 0.5


def test_rendered_frames_have_no_large_holes():
    img, _ = stalk_on_flat_background()
    motion = MotionTexture.from_volume(ProceduralPrior().predict(img, seed=0, intensity=2.0), 24, 30.0)
    fields = motion.fields(0, 24)[:, 0].float()
    _, coverage = softmax_splat(img.expand(24, -1, -1, -1), fields, importance_metric(motion))
    holes = coverage < 0.5
    assert float(holes.float().mean()) < 0.01
    # No hole is wider than a few pixels: 3x3 erosion removes every one.
    eroded = -torch.nn.functional.max_pool2d(-holes.float(), 5, stride=1, padding=2)
    assert not bool((eroded > 0).any())


def test_user_mask_edge_separates_motion():
    """A mask is also an object boundary: the two halves of one texture no longer share a phase."""
    img = torch.full((1, 3, 96, 128), 0.45)
    img[:, :, 16:80, 16:112] = GREEN * (0.6 + 0.5 * noise((1, 1, 64, 96), 3))
    mask = torch.ones(1, 1, 96, 128)
    mask[..., 64:] = 0.5  # a softer region of the same texture
    together, apart = [], []
    for seed in range(10):
        plain = ProceduralPrior().predict(img.clamp(0, 1), seed=seed).coeffs[0, 2, 0]
        cut = ProceduralPrior().predict(img.clamp(0, 1), seed=seed, mask=mask).coeffs[0, 2, 0]
        together.append(torch.stack([plain[40:56, 56:61].mean(), plain[40:56, 67:72].mean()]))
        apart.append(torch.stack([cut[40:56, 56:61].mean(), cut[40:56, 67:72].mean()]))

    def corr(pairs):
        pairs = torch.stack(pairs)
        a, b = pairs[:, 0], pairs[:, 1]
        return float((a * b.conj()).mean().abs() / (a.abs().pow(2).mean() * b.abs().pow(2).mean()).sqrt())

    assert corr(together) > corr(apart) + 0.2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_seed_same_motion_on_cpu_and_gpu():
    img, _ = water_under_sky()
    mask = torch.ones(1, 1, 96, 128)
    mask[..., :10] = 0
    cpu = ProceduralPrior().predict(img, seed=9, mask=mask)
    gpu = ProceduralPrior().predict(img.cuda(), seed=9, mask=mask.cuda())
    assert gpu.coeffs.is_cuda
    assert torch.allclose(gpu.coeffs.cpu(), cpu.coeffs, atol=1e-4, rtol=1e-4)


def test_faces_stay_still_while_hair_moves():
    """A smooth skin-coloured face under dark, stranded hair."""
    h, w = 96, 128
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    img = torch.full((1, 3, h, w), 0.55) * torch.tensor([0.8, 0.85, 0.9]).view(1, 3, 1, 1)
    face = ((xx - 64) / 22) ** 2 + ((yy - 60) / 28) ** 2 < 1
    img[:, :, face] = torch.tensor([0.85, 0.62, 0.5]).view(1, 3, 1)
    hair = (((xx - 64) / 34) ** 2 + ((yy - 40) / 30) ** 2 < 1) & ~face & (yy < 75)
    strands = 0.12 + 0.25 * (torch.sin(xx * 1.7 + 3 * noise((h, w), 4)) > 0).float()
    img[:, :, hair] = (strands[hair] * torch.tensor([1.0, 0.75, 0.5]).view(3, 1)).unsqueeze(0)
    inner_face = face & (((xx - 64) / 16) ** 2 + ((yy - 62) / 22) ** 2 < 1)
    for preset in ("auto", "cloth and hair"):
        energy = ProceduralPrior(preset=preset).predict(img, seed=0).coeffs[:, 1:].abs().pow(2).sum(dim=(0, 1, 2))
        assert energy[inner_face].sum() <= 0.05 * energy.sum(), preset  # (auto may move nothing here at all)
    # Only the hair preset knows dull brown strands from rock; auto keeps unsaturated texture calm.
    assert energy_share(ProceduralPrior(preset="cloth and hair").predict(img, seed=0), hair) > 0.6


def warm_patch_beside_a_meadow(kind, h=120, w=160):
    """A meadow of leafy green below, pale sky above, and on the meadow's edge a warm orange patch: autumn
    leaves (blobs running every way) or a brick wall (courses and joints along the image axes)."""
    from gid_engine import imageops

    img = torch.empty(1, 3, h, w)
    img[:] = torch.tensor([0.75, 0.8, 0.9]).view(1, 3, 1, 1)
    img[:, :, h // 2:] = GREEN * (0.6 + 0.5 * noise((1, 1, h - h // 2, w), 3))
    patch = (slice(24, 64), slice(40, 120))
    if kind == "leaves":
        blobs = imageops.gaussian_blur(noise((1, 1, 40, 80), 4), 1.2)
        shade = (0.6 + 4 * (blobs - blobs.mean())).clamp(0.2, 1)
    else:
        ys, xs = torch.meshgrid(torch.arange(40), torch.arange(80), indexing="ij")
        mortar = (ys % 6 == 0) | ((xs + 6 * ((ys // 6) % 2)) % 12 == 0)
        shade = torch.where(mortar, 0.35, 0.85 + 0.1 * noise((40, 80), 5)).view(1, 1, 40, 80)
    img[:, :, patch[0], patch[1]] = torch.tensor([0.9, 0.5, 0.15]).view(1, 3, 1, 1) * shade
    return img.clamp(0, 1), patch


def test_autumn_leaves_beside_plants_move_and_a_brick_wall_does_not():
    """Warm foliage within reach of green plants moves in `auto` (autumn woods, backlit seed heads); warm texture
    laid along the image axes (brick, planks) and warm texture with no plant in reach (robes on a stage) do not."""
    from gid_engine.sources.prior.cues import MotionCues

    inner = (slice(30, 58), slice(46, 114))
    share = {}
    for kind in ("leaves", "bricks"):
        img, _ = warm_patch_beside_a_meadow(kind)
        share[kind] = float(MotionCues(img).autumn_among_plants[0, 0][inner].mean())
    assert share["leaves"] > 0.3 and share["bricks"] < 0.05, share
    img, _ = warm_patch_beside_a_meadow("leaves")
    img[:, :, 64:] = 0.2  # no meadow: a dark floor
    assert float(MotionCues(img).autumn_among_plants[0, 0][inner].mean()) < 0.1


def planks_and_a_banded_meadow(h=120, w=160):
    """Left: grey boards laid level with dark greenish joints (as plant-coloured as a shadowed stalk). Right: a
    meadow in level bands of light and shade, full of plants."""
    img = torch.empty(1, 3, h, w)
    ys = torch.arange(h).view(1, 1, h, 1).float()
    boards = torch.tensor([0.62, 0.58, 0.52]).view(1, 3, 1, 1) * (0.9 + 0.1 * noise((1, 1, h, w // 2), 6))
    joints = (ys % 10 < 2).expand(1, 1, h, w // 2)
    img[..., :w // 2] = torch.where(joints, torch.tensor([0.16, 0.26, 0.15]).view(1, 3, 1, 1), boards)
    bands = 0.75 + 0.25 * torch.sin(ys / 3)
    img[..., w // 2:] = GREEN * bands * (0.6 + 0.5 * noise((1, 1, h, w - w // 2), 7))
    return img.clamp(0, 1)


def test_plank_joints_keep_still_and_a_meadow_in_level_bands_moves():
    """Dark joints of level boards read as plant-coloured lines; where few plants surround them they are level
    structure and do not move in auto. A meadow's level bands are full of plants: it moves."""
    from gid_engine.sources.prior.cues import PLANT_LIKE, MotionCues

    img = planks_and_a_banded_meadow()
    cues = MotionCues(img)
    boards, meadow = (slice(20, 100), slice(15, 60)), (slice(20, 100), slice(100, 145))
    joints = cues.vegetation[0, 0][boards] > PLANT_LIKE
    assert joints.float().mean() > 0.1  # the cue this guards against fires on the joints
    assert float(cues.level_structure[0, 0][boards].mean()) > 0.8
    assert float(cues.level_structure[0, 0][meadow].mean()) < 0.05
    _, mobility = ProceduralPrior().predict_with_mobility(img, seed=0)
    assert float(mobility[0, 0][boards].amax()) < 0.05
    assert float(mobility[0, 0][meadow].median()) > 0.3


def test_a_few_faint_specks_are_not_boosted_like_a_meadow():
    """The free level normalises the moving pixels of a plant picture to the measured motion (boosting up to
    1 / FREE_FLOOR); a few specks of doubt are not normalised: they keep their own faint level, smoothly."""
    from gid_engine.sources.prior.model import FREE_FLOOR, FREE_SHARE, free_level

    def level(share):
        envelope = torch.zeros(1, 1, 100, 100)
        envelope.view(-1)[:round(share * 10_000)] = 0.15
        return free_level(envelope)

    assert level(0.0) == 1.0
    assert level(FREE_SHARE[0] / 2) == 1.0
    assert level(FREE_SHARE[1] * 2) == pytest.approx(FREE_FLOOR)
    levels = [level(s) for s in torch.linspace(FREE_SHARE[0], FREE_SHARE[1], 9).tolist()]
    assert all(a >= b for a, b in zip(levels, levels[1:])) and max(abs(a - b) for a, b in zip(levels, levels[1:])) < 0.2


def test_faint_mobility_moves_only_beside_a_confident_plant():
    """Doubt is not motion: a patch the cues only half believe keeps still on its own and keeps its motion as the
    soft fringe of a plant they believe."""
    from gid_engine.sources.prior.mobility import FAINT, confident_nearby

    mobility = torch.zeros(1, 1, 100, 200)
    mobility[..., 40:60, 20:40] = FAINT[0] * 0.75  # alone
    mobility[..., 40:60, 120:140] = 0.9  # a plant...
    mobility[..., 40:60, 140:160] = FAINT[0] * 0.75  # ... and its fringe, running on
    factor = confident_nearby(mobility, reach=6)[0, 0]
    assert float(factor[40:60, 20:40].max()) == 0.0
    assert float(factor[40:60, 140:143].min()) > 0.9  # within half the reach of the plant
    assert float(factor[40:60, 155:160].max()) < 0.05  # beyond twice the reach
    assert bool((factor[50, 140:160].diff() <= 0).all())  # fading smoothly, no edge to tear along


def test_an_olive_lawn_is_not_skin_and_a_face_is():
    """The YCbCr skin box also holds olive lawns and dry grass (which `free` then kept still); skin is not
    yellow-green. Smooth patches: a face tone, a tanned one, an olive lawn, a straw-coloured one."""
    from gid_engine.sources.prior.cues import MotionCues

    tones = {"face": (0.85, 0.64, 0.54), "tan": (0.55, 0.38, 0.28), "olive": (0.46, 0.44, 0.30),
             "straw": (0.62, 0.58, 0.40)}
    img = torch.cat([torch.tensor(c).view(1, 3, 1, 1).expand(1, 3, 48, 40) for c in tones.values()], dim=3)
    cues = MotionCues(img + 0.01 * noise((1, 1, 48, 160), 8))
    skin = {name: float(cues.skin[0, 0, 8:40, 40 * i + 8:40 * i + 32].mean()) for i, name in enumerate(tones)}
    assert skin["face"] > 0.5 and skin["tan"] > 0.5, skin
    assert skin["olive"] < 0.05 and skin["straw"] < 0.05, skin
