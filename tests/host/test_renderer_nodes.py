"""A learned renderer trained by the CLI, inside a real ComfyUI host: Load GID Renderer -> Softmax Splat Render."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from comfy_host import ComfyHost, PromptRejected
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from test_pack import gid_prompt, webp_frames

REPO = Path(__file__).resolve().parents[2]
RENDERER = "gid_renderer_tiny.safetensors"
BRIGHT = "gid_renderer_bright.safetensors"  # the same weights with +0.25 on every output channel


@pytest.fixture(scope="module")
def renderers(comfy_host: ComfyHost, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train the tiny renderer for a few steps with the CLI; install it (and a brightened copy) in models/gid."""
    from benchmarks.learned_model import build_dataset

    work = tmp_path_factory.mktemp("renderer")
    data = build_dataset(work / "data", 4, num_bins=4, size=32)
    result = subprocess.run([sys.executable, "-m", "gid_engine.train", "--config", "tiny", "--data", str(data),
                             "--out", str(work / "run"), "--phases", "renderer", "--renderer-steps", "10"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    folder = comfy_host.model_paths["gid"]
    folder.mkdir(parents=True, exist_ok=True)
    trained = work / "run" / "gid_renderer.safetensors"
    shutil.copyfile(trained, folder / RENDERER)
    tensors = load_file(str(trained))
    tensors["decoder.out.bias"] = tensors["decoder.out.bias"] + 0.25
    with safe_open(str(trained), framework="pt") as f:
        save_file(tensors, str(folder / BRIGHT), metadata=f.metadata())
    return folder


@pytest.fixture(scope="module")
def picture(comfy_host: ComfyHost) -> str:
    path = comfy_host.input_dir / "gid_test_renderer_small.png"
    Image.open(REPO / "samples" / "dandelion.jpg").resize((96, 54)).save(path)
    return path.name


def render(comfy_host: ComfyHost, picture: str, renderer: str | None, frames: int = 6) -> tuple[np.ndarray, list]:
    prompt = gid_prompt(picture, frames=frames, motion__start_on_picture=True, render__temperature=0.5)
    if renderer is not None:
        prompt["renderer"] = {"class_type": "GID_LoadGIDRenderer", "inputs": {"renderer_name": renderer}}
        prompt["render"]["inputs"]["renderer_model"] = ["renderer", 0]
    entry, progress = comfy_host.run_with_progress(prompt, "render", timeout=600)
    saved = next(f for f in comfy_host.output_files(entry) if f["node_id"] == "save")
    return webp_frames(comfy_host.download(saved)), progress


def test_renderer_checkpoint_loads_and_softmax_splat_render_uses_it(comfy_host: ComfyHost, renderers: Path,
                                                                   picture: str, assert_no_pack_tracebacks) -> None:
    since = comfy_host.log_size()
    info = comfy_host.object_info(refresh=True)
    options = info["GID_LoadGIDRenderer"]["input"]["required"]["renderer_name"][1]["options"]
    assert RENDERER in options and BRIGHT in options
    optional = info["GID_SoftmaxSplatRender"]["input"]["optional"]
    assert optional["renderer_model"][0] == "GID_RENDERER"
    assert "training-free" in optional["renderer_model"][1]["tooltip"]

    default, _ = render(comfy_host, picture, None)
    learned, progress = render(comfy_host, picture, RENDERER)
    bright, _ = render(comfy_host, picture, BRIGHT)
    assert default.shape == learned.shape == bright.shape == (6, 54, 96, 3)
    assert progress and progress[-1]["value"] == progress[-1]["max"] == 6
    # Frame 0 (start on the picture, nothing moved): the untouched picture for the trained renderer too.
    assert np.abs(learned[0] - default[0]).max() <= 1
    # The trained renderer draws the moving frames close to, but not exactly like, the training-free one...
    moving = np.abs(learned[1:] - default[1:]).mean()
    assert 0 < moving < 8, moving
    # ... and the frames come from the checkpoint chosen: +0.25 on the decoder's output brightens every frame.
    lift = (bright - learned).mean() / 255
    assert 0.15 < lift <= 0.25, lift
    assert_no_pack_tracebacks(since)


def test_loader_lists_only_renderers_and_refuses_other_names(comfy_host: ComfyHost, renderers: Path,
                                                             picture: str) -> None:
    motion_like = renderers / "not_a_renderer.safetensors"
    tensors = load_file(str(renderers / RENDERER))
    save_file(tensors, str(motion_like), metadata={"format": "gid.spectral_volume"})
    options = comfy_host.object_info(refresh=True)["GID_LoadGIDRenderer"]["input"]["required"]["renderer_name"][1]
    assert motion_like.name not in options["options"]
    for name in (motion_like.name, "../../secrets.safetensors", str(renderers / RENDERER)):
        prompt = gid_prompt(picture, frames=4)
        prompt["renderer"] = {"class_type": "GID_LoadGIDRenderer", "inputs": {"renderer_name": name}}
        prompt["render"]["inputs"]["renderer_model"] = ["renderer", 0]
        with pytest.raises(PromptRejected) as rejected:
            comfy_host.run(prompt)
        message = json.dumps(rejected.value.node_errors)
        assert "renderer_name" in message and "not one of the files this node lists" in message, message
