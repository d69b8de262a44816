"""Shared value checks, the options of motion sources and video motion, and validated loading of GID files."""
from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch

from gid_engine import checks
from gid_engine.sources.base import PriorSource, SavedVolumeSource, builtin_source, split_options
from gid_engine.sources.checkpoints import load_motion_source
from gid_engine.formats import read_header
from gid_engine.sources.video import AUTO_BINS, VideoMotionOptions, extract_motion, extraction_bytes
from gid_engine.spectral.volume import SpectralVolume


@pytest.mark.parametrize("value, message", [
    (float("nan"), "fps: expected a finite number, got nan"),
    (float("inf"), "fps: expected a finite number, got inf"),
    (2000.0, "fps: 2000.0 is out of range; allowed: >= 0.1 and <= 240"),
    (1e-300, "fps: 1e-300 is out of range"),
    (-1, "fps: -1.0 is out of range"),
    ("30", "fps: expected a number, got '30'"),
    (True, "fps: expected a number, got True"),
])
def test_range_refuses_with_the_input_value_and_allowed_range(value, message) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        checks.Range(0.1, 240.0).check("fps", value)


def test_range_keeps_good_values_and_declares_the_widget() -> None:
    frames = checks.Range(1, 100000, whole=True)
    assert frames.check("frames", 120) == 120 and frames.check("frames", 12.0) == 12
    assert frames.widget() == {"min": 1, "max": 100000}
    for bad in (0, 10 ** 12, 2.5, float("nan")):
        with pytest.raises(ValueError, match="^frames: "):
            frames.check("frames", bad)


def test_tensor_checks_name_the_input() -> None:
    picture = torch.rand(1, 8, 8, 3)
    assert checks.finite_tensor("image", picture) is picture
    picture[0, 2, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="^image: contains 1 NaN or infinite value"):
        checks.finite_tensor("image", picture)
    with pytest.raises(ValueError, match=r"^mask: values span -0.5..2; allowed: >= 0 and <= 1"):
        checks.finite_tensor("mask", torch.tensor([-0.5, 2.0]), minimum=0.0, maximum=1.0)
    large = torch.rand(checks.CHECK_CHUNK + 100)  # checked piece by piece: a NaN in any piece is found
    large[-3] = float("nan")
    with pytest.raises(ValueError, match="contains 1 NaN"):
        checks.finite_tensor("images", large)
    large[-3] = 0.5
    large[6] = -float("inf")
    with pytest.raises(ValueError, match="contains 1 NaN"):
        checks.finite_tensor("images", large[::2])
    coeffs = torch.zeros(2, dtype=torch.complex64)
    coeffs[1] = complex(0, math.inf)
    with pytest.raises(ValueError, match="contains 1 NaN"):
        checks.finite_tensor("volume", coeffs)


def test_sources_apply_their_own_options_and_refuse_the_others() -> None:
    prior = builtin_source("builtin: procedural motion prior")
    assert isinstance(prior, PriorSource)
    assert prior.with_options(preset="foliage").preset == "foliage"
    assert prior.with_options(preset="auto", steps=0, cfg=0.0, loop_guidance=0.0) == prior  # neutral values
    with pytest.raises(ValueError, match="^preset: unknown value 'wind'"):
        prior.with_options(preset="wind")
    with pytest.raises(ValueError, match="^cfg: 1.5 only learned checkpoints sample with diffusion; procedural "
                                         "motion prior does not use it, so set cfg to 0.0"):
        prior.with_options(cfg=1.5)
    saved = SavedVolumeSource(SpectralVolume(torch.zeros(1, 4, 2, 8, 8, dtype=torch.complex64)), "sway")
    assert saved.with_options(preset="auto", steps=0) is saved
    with pytest.raises(ValueError, match="^preset: 'water ripples' only applies to the built-in procedural prior; "
                                         "sway does not use it"):
        saved.with_options(preset="water ripples")
    with pytest.raises(ValueError, match="^speed: not an option of any motion source"):
        split_options("x", {"speed": 2.0}, ())


def test_memory_estimates_grow_with_what_is_asked() -> None:
    prior = PriorSource()
    assert prior.estimate_bytes(1, 1080, 1920) > prior.estimate_bytes(1, 540, 960)
    # above 2048 px the prior works on a 2048 px grid: an 8K prediction needs what a 2048x1152 one does (< 2 GB)
    assert prior.estimate_bytes(1, 4320, 7680) == prior.estimate_bytes(1, 1152, 2048) < 2 * 2 ** 30
    assert prior.estimate_bytes(2, 100, 100) == 2 * prior.estimate_bytes(1, 100, 100)
    options = VideoMotionOptions(max_size=384)
    assert extraction_bytes(600, 512, 512, 30.0, options) == 600 * 384 * 384 * 64
    assert extraction_bytes(60, 512, 512, 30.0, VideoMotionOptions(resample_fps=300.0)) > extraction_bytes(
        60, 512, 512, 30.0, options)
    with pytest.raises(ValueError, match="^fps: "):
        extraction_bytes(60, 512, 512, float("nan"), options)


def moving_clip(frames: int) -> torch.Tensor:
    ys, xs = np.mgrid[0:40, 0:48].astype(np.float64)
    clip = [0.5 + 0.25 * np.sin((xs - 1.5 * math.sin(0.7 * i)) / 3.0) * np.cos(ys / 4.0) for i in range(frames)]
    return torch.from_numpy(np.stack(clip)).float().unsqueeze(-1).expand(-1, -1, -1, 3).contiguous()


def test_video_bins_default_to_what_the_clip_supports() -> None:
    clip = moving_clip(25)  # what image-to-video models give; auto reference 0 -> 25 samples
    auto = extract_motion(clip, 24.0, VideoMotionOptions(num_bins=AUTO_BINS, reference=0, max_size=0))
    assert auto.volume.num_bins == 13 and auto.report["num_bins"] == 13 and auto.report["num_bins_auto"]
    long = extract_motion(moving_clip(40), 24.0, VideoMotionOptions(num_bins=AUTO_BINS, reference=0, max_size=0))
    assert long.volume.num_bins == 16
    with pytest.raises(ValueError, match="^num_bins: 16 bins need more than 30 frames after the reference, the clip "
                                         "gives 25; use at most 13 bins"):
        extract_motion(clip, 24.0, VideoMotionOptions(num_bins=16, reference=0, max_size=0))
    for name, value in (("num_bins", -3), ("max_size", 10 ** 9), ("period", -1), ("resample_fps", float("nan")),
                        ("reference", -7)):
        with pytest.raises(ValueError, match=f"^{name}: "):
            VideoMotionOptions(**{name: value}).checked()
    with pytest.raises(ValueError, match="^camera: unknown value 'tripod'"):
        VideoMotionOptions(camera="tripod").checked()


def rewrite_header(data: bytes, change) -> bytes:
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_len])
    change(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + header_len:]


def test_saved_volumes_with_bad_content_are_refused_by_name(tmp_path) -> None:
    good = SpectralVolume(torch.randn(1, 4, 2, 8, 8, dtype=torch.complex64)).save(tmp_path / "good.safetensors")
    assert SpectralVolume.load(good).num_bins == 4
    data = good.read_bytes()
    cases = {
        "huge_header.safetensors": (struct.pack("<Q", 2 ** 40) + data[8:], "header length"),
        "short.safetensors": (data[:5], "only 5 bytes"),
        "no_imag.safetensors": (rewrite_header(data, lambda h: h.pop("imag")), "exactly the tensors real and imag"),
        "bad_fps.safetensors": (rewrite_header(data, lambda h: h["__metadata__"].update(fps="fast")), "metadata"),
        "zero_fps.safetensors": (rewrite_header(data, lambda h: h["__metadata__"].update(fps="0")), "fps"),
        "lying_shape.safetensors": (rewrite_header(data, lambda h: h["real"].update(shape=[1, 4, 2, 80, 80])),
                                    "does not match its"),
    }
    for name, (content, needle) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=needle):
            SpectralVolume.load(tmp_path / name)
    nan = SpectralVolume(torch.full((1, 4, 2, 8, 8), complex(float("nan"), 0), dtype=torch.complex64))
    nan.save(tmp_path / "nan.safetensors")
    with pytest.raises(ValueError, match=r"nan.safetensors: real: contains 512 NaN"):
        SpectralVolume.load(tmp_path / "nan.safetensors")
    with pytest.raises(ValueError, match="nan.safetensors: real: contains"):
        load_motion_source(tmp_path / "nan.safetensors")


def test_a_tiny_file_claiming_a_huge_model_is_refused_before_anything_is_built(tmp_path) -> None:
    from safetensors.torch import save_file

    from gid_engine.formats import MOTION_MODEL
    from gid_engine.sources.ldm.model import TINY, GIDMotionModel
    from gid_engine.spectral.normalization import FrequencyNormalization

    config = json.loads(TINY.to_json())
    config["unet"]["channels"] = 1600
    meta = MOTION_MODEL.metadata(config=json.dumps(config), normalization=FrequencyNormalization.default().to_json(),
                                 sampling="{}")
    path = tmp_path / "claims_a_lot.safetensors"
    save_file({"w": torch.zeros(4)}, str(path), metadata=meta)
    assert path.stat().st_size < 4096
    with pytest.raises(ValueError, match=r"config.unet.channels: 1600 is out of range; allowed: >= 1 and <= 512"):
        load_motion_source(path)
    # within the limits but not what the file holds: refused from the header's shapes, on the meta device
    config["unet"]["channels"] = 512
    meta["config"] = json.dumps(config)
    save_file({"w": torch.zeros(4)}, str(path), metadata=meta)
    with pytest.raises(ValueError, match="weights do not match the model config"):
        GIDMotionModel.load(path)
    assert set(read_header(path).tensors) == {"w"}
