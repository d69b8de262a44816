"""Edit Spectrum and the prior's presets inside a real ComfyUI host."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from comfy_host import ComfyHost, PromptRejected
from test_pack import sample, webp_frames  # noqa: F401  (sample is a fixture)

BUILTIN = "builtin: procedural motion prior"


def prompt_with_edit(image_name: str, edit: str, frames: int = 8, preset: str = "foliage") -> dict[str, Any]:
    return {
        "load": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "model": {"class_type": "GID_LoadGIDModel", "inputs": {"model_name": BUILTIN}},
        "predict": {"class_type": "GID_PredictSpectralVolume",
                    "inputs": {"gid_model": ["model", 0], "image": ["load", 0], "seed": 1, "intensity": 3.0,
                               "preset": preset}},
        "edit": {"class_type": "GID_EditSpectrum", "inputs": {"spectral_volume": ["predict", 0], "edit": edit}},
        "motion": {"class_type": "GID_MotionTexture",
                   "inputs": {"spectral_volume": ["edit", 0], "frames": frames, "fps": 24.0, "speed": 1.0,
                              "loop": True, "start_on_picture": False, "start_seconds": 0.0, "calm_start": True}},
        "render": {"class_type": "GID_SoftmaxSplatRender",
                   "inputs": {"image": ["load", 0], "motion_texture": ["motion", 0], "temperature": 10.0}},
        "save": {"class_type": "SaveAnimatedWEBP",
                 "inputs": {"images": ["render", 0], "fps": 24.0, "filename_prefix": "gidtest/edit",
                            "lossless": True, "quality": 100, "method": "fastest"}},
    }


def frames_of(comfy_host: ComfyHost, entry: dict[str, Any]) -> np.ndarray:
    info = next(f for f in comfy_host.output_files(entry) if f["node_id"] == "save")
    return webp_frames(comfy_host.download(info))


def test_schema_documents_the_edit_and_the_presets(comfy_host: ComfyHost) -> None:
    info = comfy_host.object_info()
    node = info["GID_EditSpectrum"]
    assert node["category"] == "GID" and len(node["description"]) > 40
    assert list(node["input"]["required"]) == ["spectral_volume", "edit"]
    assert list(node["input"]["optional"]) == ["mask"]
    edit = node["input"]["required"]["edit"]
    assert edit[0] == "STRING" and edit[1]["default"] == "{}" and "magnify" in edit[1]["tooltip"]
    assert node["output"] == ["SPECTRAL_VOLUME"]
    predict = info["GID_PredictSpectralVolume"]["input"]
    preset = predict["optional"]["preset"]
    assert preset[1]["options"][0] == "auto" and "flame flicker" in preset[1]["options"]
    assert preset[1]["tooltip"]
    # saved workflows keep their widget order: the new input comes last
    assert list(predict["required"]) == ["gid_model", "image", "seed", "intensity"]
    assert list(predict["optional"]) == ["mask", "preset", "steps", "cfg", "loop_guidance", "motion_brush"]


def test_edit_reports_the_spectrum_and_magnifies_the_motion(comfy_host: ComfyHost, sample: str) -> None:
    entry = comfy_host.run(prompt_with_edit(sample, json.dumps({"magnify": 2.0})), timeout=300)
    report = entry["outputs"]["edit"]["gid_spectrum"]
    assert len(report) == 1
    spectrum = report[0]
    assert set(spectrum) == {"frequencies_hz", "energy_in", "energy_out", "total_amplitude_px"}
    assert len(spectrum["frequencies_hz"]) == 16 and spectrum["frequencies_hz"][-1] == pytest.approx(3.0)
    for before, after in zip(spectrum["energy_in"][1:], spectrum["energy_out"][1:]):
        assert after == pytest.approx(2 * before, rel=1e-4)
    assert spectrum["total_amplitude_px"] > 0

    still = comfy_host.run(prompt_with_edit(sample, json.dumps({"magnify": 0})), timeout=300)
    frames = frames_of(comfy_host, still)
    assert np.abs(frames - frames[0]).max() == 0  # minified to nothing: every frame is the picture


def test_freeze_inside_a_mask_keeps_that_region_exactly_still(comfy_host: ComfyHost, sample: str) -> None:
    prompt = prompt_with_edit(sample, json.dumps({"freeze": True, "feather_px": 6}), frames=10)
    # the left half of the picture is the region to freeze
    prompt["solid"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 128, "height": 72}}
    prompt["ones"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 72}}
    prompt["mask"] = {"class_type": "MaskComposite",
                      "inputs": {"destination": ["solid", 0], "source": ["ones", 0], "x": 0, "y": 0, "operation": "add"}}
    prompt["edit"]["inputs"]["mask"] = ["mask", 0]
    frames = frames_of(comfy_host, comfy_host.run(prompt, timeout=300))
    left, right = frames[:, :, :44], frames[:, :, 84:]
    assert np.abs(left - left[0]).max() == 0
    assert np.abs(right - right[0]).mean() > 0.1


def test_bad_edit_json_is_refused_when_queued(comfy_host: ComfyHost, sample: str) -> None:
    for edit, needle in (('{"magnify": 2', "not valid JSON"), ('{"zoom": 2}', "unknown key(s) 'zoom'"),
                         ('{"magnify": -1}', "'magnify': -1.0 is out of range; allowed: >= 0 and <= 1000")):
        with pytest.raises(PromptRejected) as rejected:
            comfy_host.run(prompt_with_edit(sample, edit), timeout=300)
        message = json.dumps(rejected.value.node_errors["edit"])
        assert "edit:" in message and needle in message, message


def test_edit_works_on_a_loaded_volume(comfy_host: ComfyHost, sample: str) -> None:
    import torch
    from gid_engine.spectral.volume import SpectralVolume, at_rest_dc

    coeffs = torch.zeros(1, 16, 2, 9, 16, dtype=torch.complex64)
    coeffs[:, 2, 0] = 150 / 2 * 1.5  # everything sways 1.5 px left-right at 0.4 Hz
    coeffs[:, 0] = at_rest_dc(coeffs)
    SpectralVolume(coeffs).save(comfy_host.model_paths["gid"] / "gid_edit_sway.safetensors")
    comfy_host.object_info(refresh=True)
    prompt = prompt_with_edit(sample, json.dumps({"restrict_deg": 90}), preset="auto")
    prompt["model"]["inputs"]["model_name"] = "gid_edit_sway.safetensors"
    frames = frames_of(comfy_host, comfy_host.run(prompt, timeout=300))
    assert np.abs(frames - frames[0]).max() == 0  # horizontal sway restricted to vertical: nothing left
    prompt["edit"]["inputs"]["edit"] = "{}"
    frames = frames_of(comfy_host, comfy_host.run(prompt, timeout=300))
    assert np.abs(frames - frames[0]).mean() > 0.5
