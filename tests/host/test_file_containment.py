"""Loaders open only the files they list: no name sent in a prompt reaches a file outside their folders, and a
refused name reveals nothing about whether such a file exists (issue: hostile input)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from comfy_host import ComfyHost, PromptRejected

from gid_engine.spectral.volume import SpectralVolume


def write_volume(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    coeffs = torch.zeros(1, 4, 2, 12, 16, dtype=torch.complex64)
    coeffs[:, 1] = 0.5
    return SpectralVolume(coeffs, fps=30.0, period=8).save(path)


def refusal(host: ComfyHost, prompt: dict) -> str:
    """The queue-time refusal of a prompt, as text; fails the test if the prompt was accepted."""
    with pytest.raises(PromptRejected) as rejected:
        host.run(prompt, timeout=120)
    return json.dumps(rejected.value.node_errors)


def load_volume_prompt(name: str) -> dict:
    return {"load": {"class_type": "GID_LoadSpectralVolume", "inputs": {"file": name}},
            "save": {"class_type": "GID_SaveSpectralVolume",
                     "inputs": {"spectral_volume": ["load", 0], "filename_prefix": "gidtest/leak"}}}


def load_model_prompt(name: str) -> dict:
    return {"model": {"class_type": "GID_LoadGIDModel", "inputs": {"model_name": name}},
            "picture": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 24, "batch_size": 1,
                                                                  "color": 0x406080}},
            "predict": {"class_type": "GID_PredictSpectralVolume",
                        "inputs": {"gid_model": ["model", 0], "image": ["picture", 0], "seed": 0,
                                   "intensity": 1.0}},
            "save": {"class_type": "GID_SaveSpectralVolume",
                     "inputs": {"spectral_volume": ["predict", 0], "filename_prefix": "gidtest/leak"}}}


def hostile_names(host: ComfyHost, secret: Path, folder: Path) -> list[str]:
    relative = os.path.relpath(secret, folder)
    return [str(secret), relative, relative + " [output]", "./" + relative, "sub/../" + relative,
            str(secret).replace(os.sep, "//"), relative.replace("/", "\\")]


@pytest.mark.parametrize("node", ["LoadSpectralVolume", "LoadGIDModel"])
def test_loaders_refuse_every_name_outside_their_folders(comfy_host: ComfyHost, node: str) -> None:
    outside = comfy_host.work_dir / "outside_every_folder"
    secret = write_volume(outside / "secret.safetensors")
    if node == "LoadSpectralVolume":
        prompt_for, folder, key = load_volume_prompt, comfy_host.input_dir, "file"
    else:
        prompt_for, folder, key = load_model_prompt, comfy_host.model_paths["gid"], "model_name"
    folder.mkdir(parents=True, exist_ok=True)
    leaked_before = sorted(comfy_host.output_dir.rglob("leak*"))

    for name in hostile_names(comfy_host, secret, folder):
        message = refusal(comfy_host, prompt_for(name))
        assert key in message and "not one of the files this node lists" in message, (name, message)
        # the same words for a name whose file exists and for one whose file does not
        missing = name.replace("secret", "no_such_file")
        assert refusal(comfy_host, prompt_for(missing)).replace("no_such_file", "secret") == message, name
    assert sorted(comfy_host.output_dir.rglob("leak*")) == leaked_before  # nothing was copied out

    # a file the node lists still loads (and the server kept serving through the refusals)
    listed = write_volume(folder / "gid_listed_volume.safetensors")
    comfy_host.object_info(refresh=True)
    entry = comfy_host.run(prompt_for(listed.name), timeout=300)
    assert entry["status"]["status_str"] == "success"
