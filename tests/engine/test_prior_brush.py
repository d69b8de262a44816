import json

import pytest
import torch

from gid_engine.sources.base import PriorSource, builtin_source, predict_with_mobility
from gid_engine.sources.prior.brush import parse_motion_brush
from gid_engine.spectral.overlay import sway_covariance


def meadow(h=72, w=128):
    """Textured green grass everywhere: the prior moves all of it."""
    g = torch.Generator().manual_seed(1)
    base = torch.tensor([0.25, 0.6, 0.2]).view(1, 3, 1, 1)
    return (base * (0.6 + 0.8 * torch.rand(1, 1, h, w, generator=g))).clamp(0, 1)


def brush(*strokes):
    return json.dumps({"strokes": list(strokes)})


def rms(volume):
    return volume.rms_displacement()[0]


@pytest.mark.parametrize("value, words", [
    ("{", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"lines": []}', "unknown key"),
    (brush({"kind": "wiggle", "points": [[0.5, 0.5]]}), "kind must be one of"),
    (brush({"kind": "still", "points": []}), "non-empty list"),
    (brush({"kind": "still", "points": [[1.5, 0.5]]}), "outside the picture"),
    (brush({"kind": "still", "points": [[0.5, float("nan")]]}), "finite numbers"),
    (brush({"kind": "direction", "points": [[0.5, 0.5]]}), "at least 2 points"),
    (brush({"kind": "still", "points": [[0.5, 0.5]], "radius": 0}), "radius"),
    (brush({"kind": "moves", "points": [[0.5, 0.5]], "strength": 2}), "strength"),
    (brush({"kind": "direction", "points": [[0.1, 0.5], [0.9, 0.5]], "strength": 5}), "strength"),
])
def test_bad_brushes_are_refused_by_name(value, words):
    with pytest.raises(ValueError, match="motion_brush") as info:
        parse_motion_brush(value)
    assert words in str(info.value)


@pytest.mark.parametrize("empty", ["", "  ", "{}", '{"strokes": []}', None])
def test_empty_brushes_change_nothing(empty):
    picture = meadow()
    plain = PriorSource().predict(picture, seed=2)
    brushed = PriorSource().with_options(motion_brush=empty).predict(picture, seed=2)
    assert torch.equal(plain.coeffs, brushed.coeffs)


def test_still_stroke_stills_its_region_and_moves_stroke_adds_motion():
    picture = meadow()
    picture[..., :, 64:] = 0.5  # right half flat grey: the prior keeps it still
    base = PriorSource().predict(picture, seed=0)
    source = PriorSource().with_options(motion_brush=brush(
        {"kind": "still", "points": [[0.25, 0.5]], "radius": 0.12},
        {"kind": "moves", "points": [[0.75, 0.5]], "radius": 0.12}))
    volume, mobility = predict_with_mobility(source, picture, seed=0)
    h, w = 72, 128
    still = (slice(h // 2 - 4, h // 2 + 4), slice(w // 4 - 4, w // 4 + 4))
    moves = (slice(h // 2 - 4, h // 2 + 4), slice(3 * w // 4 - 4, 3 * w // 4 + 4))
    assert rms(base)[still].mean() > 0.05
    assert rms(volume)[still].max() < 0.02 * rms(base)[still].mean()
    assert rms(base)[moves].mean() < 0.05 * rms(base)[still].mean()
    assert rms(volume)[moves].mean() > 0.5 * rms(base)[still].mean()
    assert mobility.shape == (1, 1, h, w)
    assert float(mobility[0, 0][still].max()) < 0.02 and float(mobility[0, 0][moves].min()) > 0.9


@pytest.mark.parametrize("points, axis", [([[0.3, 0.5], [0.7, 0.5]], 0), ([[0.5, 0.1], [0.5, 0.9]], 1)])
def test_direction_stroke_sets_the_sway_axis_and_strength(points, axis):
    picture = meadow()
    source = PriorSource().with_options(motion_brush=brush(
        {"kind": "direction", "points": points, "radius": 0.3, "strength": 2.0}))
    volume = source.predict(picture, seed=0)
    base = PriorSource().predict(picture, seed=0)
    centre = (slice(30, 42), slice(56, 72))
    cov = sway_covariance(volume)[0]  # xx, yy, xy
    along, across = cov[axis][centre].mean(), cov[1 - axis][centre].mean()
    assert along > 4 * across
    assert rms(volume)[centre].mean() > 1.5 * rms(base)[centre].mean()


def test_brush_on_another_source_is_refused_by_name(tmp_path):
    volume = PriorSource().predict(meadow(), seed=0)
    path = volume.save(tmp_path / "motion.safetensors")
    from gid_engine.sources.checkpoints import load_motion_source

    source = load_motion_source(path)
    assert source.with_options(motion_brush="{}") is source  # an empty brush asks nothing
    with pytest.raises(ValueError, match="motion_brush"):
        source.with_options(motion_brush=brush({"kind": "still", "points": [[0.5, 0.5]]}))


def test_mobility_of_a_source_without_its_own_estimate_follows_its_motion(tmp_path):
    picture = meadow()
    picture[..., :, 64:] = 0.5
    volume = builtin_source("builtin: procedural motion prior").predict(picture, seed=0)
    path = volume.save(tmp_path / "motion.safetensors")
    from gid_engine.sources.checkpoints import load_motion_source

    replay, mobility = predict_with_mobility(load_motion_source(path), picture, seed=0)
    assert mobility.shape == (1, 1, 72, 128)
    assert float(mobility[..., :, :48].mean()) > 5 * float(mobility[..., :, 80:].mean())
    assert float(mobility.min()) >= 0 and float(mobility.max()) <= 1


def test_a_drawn_path_becomes_a_direction_stroke():
    from gid_engine.sources.prior.brush import add_direction_paths
    from gid_engine.spectral.tracks import parse_coordinates

    picture = meadow()
    paths = parse_coordinates('[{"x": 20, "y": 10}, {"x": 20, "y": 60}]')  # a vertical stroke, pixels
    value = add_direction_paths("", paths, 128, 72)
    stroke = json.loads(value)["strokes"][0]
    assert stroke["kind"] == "direction" and stroke["points"][0] == [20 / 128, 10 / 72]
    volume = PriorSource().with_options(motion_brush=value).predict(picture, seed=0)
    cov = sway_covariance(volume)[0]
    along_path = (slice(20, 50), slice(14, 26))
    assert cov[1][along_path].mean() > 4 * cov[0][along_path].mean()
    with pytest.raises(ValueError, match=r"direction_path\[0\]: point"):
        add_direction_paths("", parse_coordinates('[{"x": 300, "y": 10}, {"x": 20, "y": 60}]'), 128, 72)
    with pytest.raises(ValueError, match="at least 2 different points"):
        add_direction_paths("", parse_coordinates('[{"x": 20, "y": 10}, {"x": 20, "y": 10}]'), 128, 72)
