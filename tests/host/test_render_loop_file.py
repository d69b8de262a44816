"""Render Loop File in the real host: the same file Softmax Splat Render + Save Loop write, with memory that does
not grow with the frame count, progress, cancel and bad inputs."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from comfy_host import ComfyHost

from gid_engine.loops.encode_figures import decode_loop
from test_hostile_inputs import MemoryWatch
from test_pack import expect_node_error
from test_save_loop import sample, save_loop_prompt  # noqa: F401,F811 - sample is a fixture

MB = 1024 * 1024


def render_file_prompt(image_name: str, frames: int = 12, seed: int = 3, **inputs: Any) -> dict[str, Any]:
    """save_loop_prompt's graph (Save Loop as lossless WebP) plus Render Loop File on the same motion."""
    prompt = save_loop_prompt(image_name, frames=frames, seed=seed, format="webp", quality=100)
    prompt["renderfile"] = {"class_type": "GID_RenderLoopFile",
                            "inputs": {"image": ["load", 0], "motion_texture": ["motion", 0], "temperature": 10.0,
                                       "format": "webp", "quality": 100, "filename_prefix": "gidtest/renderfile",
                                       **inputs}}
    return prompt


def only_render_file(prompt: dict[str, Any]) -> dict[str, Any]:
    """The graph without the nodes that hold every frame: what a long or large loop would use."""
    return {k: v for k, v in prompt.items() if k not in ("render", "loop", "save", "saveloop")}


def shown_file(host: ComfyHost, entry: dict[str, Any], node: str):
    ui = entry["outputs"][node]
    assert ui["animated"] == [True] and len(ui["images"]) == 1
    item = ui["images"][0]
    path = host.output_dir / item["subfolder"] / item["filename"]
    assert host.download(item) == path.read_bytes()  # what the node shows is the file written
    return ui, path


def test_render_loop_file_writes_what_render_and_save_loop_write(comfy_host: ComfyHost, sample: str,
                                                                 assert_no_pack_tracebacks) -> None:
    since = comfy_host.log_size()
    entry = comfy_host.run(render_file_prompt(sample, seed=41), timeout=300)
    ui, path = shown_file(comfy_host, entry, "renderfile")
    _, saved = shown_file(comfy_host, entry, "saveloop")
    assert path.name.startswith("renderfile_") and path.suffix == ".webp"
    streamed, held = decode_loop(path), decode_loop(saved)
    assert streamed.shape == (12, 216, 384, 3)
    assert np.array_equal(streamed, held)  # lossless: the very frames Softmax Splat Render returns
    report = ui["gid_loop"][0]
    assert report["loop_frames"] == report["output_frames"] == 12
    assert 0.5 < report["seam_ratio_after"] < 1.5  # a looping motion texture wraps like any other step
    assert_no_pack_tracebacks(since)


def test_render_loop_file_memory_does_not_grow_with_frames(comfy_host: ComfyHost, sample: str) -> None:
    warm = only_render_file(render_file_prompt(sample, frames=6, seed=42, format="mp4", quality=90))
    comfy_host.run(warm, timeout=300)  # kernels and encoder loaded before measuring
    frames = 900
    prompt = only_render_file(render_file_prompt(sample, frames=frames, seed=42, format="mp4", quality=90))
    held = frames * 216 * 384 * 3 * 4  # the IMAGE batch Softmax Splat Render would return
    with comfy_host.listen() as events, MemoryWatch(comfy_host) as watch:
        prompt_id = comfy_host.queue(prompt, client_id=events.client_id)
        entry = comfy_host.wait(prompt_id, timeout=600)
        progress = events.progress_events(prompt_id, "renderfile")
    assert entry["status"]["status_str"] == "success", entry["status"]
    _, path = shown_file(comfy_host, entry, "renderfile")
    assert decode_loop(path).shape == (frames, 216, 384, 3)
    assert progress and progress[-1]["value"] == progress[-1]["max"] == frames
    print(f"Render Loop File, {frames} frames of 384x216: server RSS grew {watch.growth / MB:.0f} MB; "
          f"the frames as an IMAGE batch are {held / MB:.0f} MB")
    assert watch.growth < held / 3


def test_render_loop_file_cancel_leaves_no_file(comfy_host: ComfyHost, sample: str) -> None:
    folder = comfy_host.output_dir / "gidtest"
    before = set(folder.glob("*")) if folder.is_dir() else set()
    prompt = only_render_file(render_file_prompt(sample, frames=3000, seed=43, format="mp4", quality=90))
    with comfy_host.listen() as events:
        prompt_id = comfy_host.queue(prompt, client_id=events.client_id)
        assert events.wait_for(lambda kind, data: kind == "progress" and data.get("prompt_id") == prompt_id
                               and data.get("node") == "renderfile", timeout=120)
        comfy_host.interrupt()
        entry = comfy_host.wait(prompt_id, timeout=120)
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]]
    after = set(folder.glob("*")) if folder.is_dir() else set()
    assert [p.name for p in after - before if "renderfile" in p.name] == []  # nor a .partial file
    entry = comfy_host.run(only_render_file(render_file_prompt(sample, frames=4, seed=44)), timeout=300)
    assert entry["status"]["status_str"] == "success"


def test_render_loop_file_bad_inputs_are_clear_errors(comfy_host: ComfyHost, sample: str) -> None:
    base = only_render_file(render_file_prompt(sample, frames=4, seed=45))
    prompt = json.loads(json.dumps(base))
    prompt["renderfile"]["inputs"]["filename_prefix"] = "../escape"
    expect_node_error(comfy_host, prompt, "filename_prefix", "../escape")
    prompt = json.loads(json.dumps(base))
    prompt["motion"]["inputs"]["frames"] = 1
    expect_node_error(comfy_host, prompt, "motion_texture", "at least 2 frames, got 1")
    prompt = json.loads(json.dumps(base))
    prompt["other"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 0}}
    prompt["renderfile"]["inputs"]["image"] = ["other", 0]
    expect_node_error(comfy_host, prompt, "image", "a batch of 2 pictures for a motion texture of 1")
    prompt = json.loads(json.dumps(base))
    prompt["t"] = {"class_type": "PrimitiveFloat", "inputs": {"value": -3.0}}
    prompt["renderfile"]["inputs"]["temperature"] = ["t", 0]
    expect_node_error(comfy_host, prompt, "temperature", "-3.0 is out of range")
    entry = comfy_host.run(base, timeout=300)  # the server keeps serving
    assert entry["status"]["status_str"] == "success"
