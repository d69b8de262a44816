"""gid_engine.formats: one check of format and version, one config reader, for every file kind."""
import dataclasses
import json

import pytest
import torch
from safetensors.torch import save_file

from gid_engine import formats
from gid_engine.render.learned_model import RendererConfig
from gid_engine.sources.ldm.model import TINY, MotionLDMConfig, SamplingOptions
from gid_engine.spectral.normalization import FrequencyNormalization


def test_format_and_version_are_checked_once_with_the_file_named(tmp_path):
    path = tmp_path / "r.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata=formats.RENDERER.metadata(config="{}"))
    assert formats.RENDERER.read(path).metadata["version"] == "1"
    with pytest.raises(ValueError, match=r"^r.safetensors is not a GID motion model \(format='gid.renderer', "
                                         r"expected 'gid.motion_ldm'\)$"):
        formats.MOTION_MODEL.read(path)
    save_file({"w": torch.zeros(2)}, str(path), metadata={**formats.RENDERER.metadata(), "version": "7"})
    with pytest.raises(ValueError, match=r"^r.safetensors: GID renderer checkpoint version '7' is not supported "
                                         r"\(this pack reads version 1\)$"):
        formats.RENDERER.read(path)
    assert formats.RENDERER.marks({"format": "gid.renderer", "version": "7"})
    with pytest.raises(ValueError, match="python -m gid_engine.data"):
        formats.DATASET.check({"format": "something"}, "manifest.json")


def test_configs_round_trip_through_the_one_reader():
    assert formats.read_config(MotionLDMConfig, TINY.to_json()) == TINY
    renderer = RendererConfig(widths=(8, 16), blocks=(1, 1))
    assert formats.read_config(RendererConfig, renderer.to_json()) == renderer
    norm = FrequencyNormalization.default(4)
    assert formats.read_config(FrequencyNormalization, norm.to_json(), "normalization") == norm
    assert formats.read_config(SamplingOptions, '{"steps": 4}', "sampling", defaults=True) == SamplingOptions(steps=4)


@pytest.mark.parametrize("cls, text, message", [
    (RendererConfig, '{"widths": [8], "blocks": [1], "depth": 3}', "renderer config has unknown keys: depth"),
    (RendererConfig, '{"widths": [8]}', r"renderer config.blocks is missing"),
    (RendererConfig, '{"widths": [8.5], "blocks": [1]}', r"renderer config.widths entries must be a non-negative integer"),
    (RendererConfig, '{"widths": [8, 8], "blocks": [1]}', "same length"),  # the class's own validate()
    (FrequencyNormalization, '{"scales": [1.0, -2.0], "width": 256, "period": 150}', r"scales\[1\]: -2.0 is out of range"),
    (FrequencyNormalization, '{"scales": ["a"], "width": 256, "period": 150}', "scales entries must be a number"),
    (SamplingOptions, '{"steps": 0}', "steps and loop_recurrence must be >= 1"),
    (MotionLDMConfig, "[1, 2]", "config must be an object"),
    (MotionLDMConfig, "{", "config is not JSON"),
])
def test_a_bad_config_names_the_key(cls, text, message):
    where = {RendererConfig: "renderer config", FrequencyNormalization: "normalization"}.get(cls, "config")
    with pytest.raises(ValueError, match=message):
        formats.read_config(cls, text, where, defaults=cls is SamplingOptions)


def test_every_config_field_type_is_readable():
    for cls in (MotionLDMConfig, RendererConfig, FrequencyNormalization, SamplingOptions):
        instance = cls(scales=(1.0,)) if cls is FrequencyNormalization else cls()
        text = json.dumps(dataclasses.asdict(instance))
        assert formats.read_config(cls, text, defaults=True) == instance
