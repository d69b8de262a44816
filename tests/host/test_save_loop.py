"""Save Loop in the real host: every format, the workflow embedded, the result shown on the node, bad inputs."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from comfy_host import ComfyHost, PromptFailed
from PIL import Image

from gid_engine.loops.encode_figures import decode_loop, loop_figures, meets_figures
from test_pack import REPO, gid_prompt

WORKFLOW = {"nodes": [], "note": "restored by dragging the file back"}


@pytest.fixture(scope="module")
def sample(comfy_host: ComfyHost) -> str:
    """The shipped sample at 384x216: 4:2:0 colour (MP4, WebM) keeps it above 40 dB; much smaller it cannot."""
    picture = comfy_host.input_dir / "gid_test_saveloop.png"
    Image.open(REPO / "samples" / "dandelion.jpg").resize((384, 216)).save(picture)
    return picture.name


def save_loop_prompt(image_name: str, frames: int = 12, seed: int = 3, **save_inputs: Any) -> dict[str, Any]:
    """gid_prompt's animation, saved by Save Loop, with the loop's frames also kept exactly (lossless WebP).
    Each run that needs those frames uses its own seed: ComfyUI does not report the outputs of cached nodes."""
    prompt = gid_prompt(image_name, frames=frames, predict__seed=seed)
    prompt["save"]["inputs"].update(filename_prefix="gidtest/exact", method="fastest")
    prompt["saveloop"] = {"class_type": "GID_SaveLoop",
                          "inputs": {"images": ["loop", 0], "fps": ["loop", 1], "format": "mp4", "quality": 90,
                                     "filename_prefix": "gidtest/saveloop", **save_inputs}}
    return prompt


def run_save_loop(host: ComfyHost, prompt: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    entry = host.run(prompt, timeout=300, extra_data={"extra_pnginfo": {"workflow": WORKFLOW}})
    ui = entry["outputs"]["saveloop"]
    assert ui["animated"] == [True] and len(ui["images"]) == 1 and ui["images"][0]["type"] == "output"
    item = ui["images"][0]
    path = host.output_dir / item["subfolder"] / item["filename"]
    exact = next(f for f in host.output_files(entry) if f["node_id"] == "save")
    reference = decode_loop(host.output_dir / exact["subfolder"] / exact["filename"])
    assert host.download(item) == path.read_bytes()  # what the node shows is the file written
    return item, decode_loop(path), reference


@pytest.mark.parametrize("format", ["mp4", "webm", "webp", "gif"])
def test_save_loop_writes_each_format_seamlessly_with_the_workflow(comfy_host: ComfyHost, sample: str,
                                                                    format: str, assert_no_pack_tracebacks) -> None:
    since = comfy_host.log_size()
    seed = 20 + ["mp4", "webm", "webp", "gif"].index(format)
    item, decoded, reference = run_save_loop(comfy_host, save_loop_prompt(sample, seed=seed, format=format))
    assert item["filename"].endswith(f".{format}") and item["subfolder"] == "gidtest"
    assert decoded.shape == reference.shape == (12, 216, 384, 3)
    figures = loop_figures(decoded, reference)
    if format == "gif":  # 256 colours: seamless and still, but below 40 dB (documented)
        assert figures["wrap_ratio"] <= 1.25 and figures["still_max_step"] <= 1, figures
    else:
        assert meets_figures(figures), figures
    path = comfy_host.output_dir / item["subfolder"] / item["filename"]
    if format == "webp":
        with Image.open(path) as im:
            exif = im.getexif()
        assert json.loads(exif[0x010F].split(":", 1)[1]) == WORKFLOW
        assert json.loads(exif[0x0110].split(":", 1)[1])["saveloop"]["class_type"] == "GID_SaveLoop"
    elif format in ("mp4", "webm"):
        import av

        with av.open(str(path)) as container:
            tags = {k.lower(): v for k, v in container.metadata.items()}
        assert json.loads(tags["workflow"]) == WORKFLOW and "saveloop" in json.loads(tags["prompt"])
    assert_no_pack_tracebacks(since)


def test_save_loop_reports_progress(comfy_host: ComfyHost, sample: str) -> None:
    with comfy_host.listen() as events:
        prompt_id = comfy_host.queue(save_loop_prompt(sample, frames=40, format="webm"), client_id=events.client_id)
        entry = comfy_host.wait(prompt_id, timeout=300)
        assert entry["status"]["status_str"] == "success"
        progress = events.progress_events(prompt_id, "saveloop")
    assert progress and progress[-1]["value"] == progress[-1]["max"] == 40


def expect_save_error(host: ComfyHost, prompt: dict[str, Any], *needles: str) -> None:
    before = sorted(p.name for p in (host.output_dir / "gidtest").glob("*")) if (host.output_dir / "gidtest").is_dir() else []
    with pytest.raises(PromptFailed) as failure:
        host.run(prompt, timeout=300)
    message = json.dumps(failure.value.execution_error)
    for needle in needles:
        assert needle in message, message
    after = sorted(p.name for p in (host.output_dir / "gidtest").glob("*")) if (host.output_dir / "gidtest").is_dir() else []
    assert [n for n in after if n not in before and "saveloop" in n] == []  # nothing half-written is left


def test_save_loop_bad_inputs_are_clear_errors(comfy_host: ComfyHost, sample: str) -> None:
    expect_save_error(comfy_host, save_loop_prompt(sample, frames=4, filename_prefix="../escape"),
                      "filename_prefix", "../escape", "climbs out of the output folder")
    absolute = str(comfy_host.output_dir.parent / "elsewhere" / "loop")
    expect_save_error(comfy_host, save_loop_prompt(sample, frames=4, filename_prefix=absolute),
                      "filename_prefix", "is an absolute path")
    assert not (comfy_host.output_dir.parent / "elsewhere").exists()

    prompt = save_loop_prompt(sample, frames=4)
    prompt["rate"] = {"class_type": "PrimitiveFloat", "inputs": {"value": 0.0}}
    prompt["saveloop"]["inputs"]["fps"] = ["rate", 0]
    expect_save_error(comfy_host, prompt, "fps", "0.0 is out of range", ">= 0.1")

    prompt = save_loop_prompt(sample, frames=4)
    prompt["one"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}}
    prompt["saveloop"]["inputs"]["images"] = ["one", 0]
    expect_save_error(comfy_host, prompt, "images", "at least 2 frames, got 1")

    prompt = save_loop_prompt(sample, frames=4, format="gif")
    prompt["rate"] = {"class_type": "PrimitiveFloat", "inputs": {"value": 60.0}}
    prompt["saveloop"]["inputs"]["fps"] = ["rate", 0]
    expect_save_error(comfy_host, prompt, "fps", "too fast for GIF")

    entry = comfy_host.run(save_loop_prompt(sample, frames=4), timeout=300)  # the server keeps serving
    assert entry["status"]["status_str"] == "success"
