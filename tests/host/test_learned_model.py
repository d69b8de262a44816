"""A learned motion model trained by the CLI, inside a real ComfyUI host: load, run the learned workflow, bad files."""
from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
from comfy_host import ComfyHost, workflow_to_api
from PIL import Image
from test_pack import expect_node_error, gid_prompt, seam_and_median, webp_frames

REPO = Path(__file__).resolve().parents[2]
LEARNED_WORKFLOW = REPO / "workflows" / "animate_still_learned.json"
CHECKPOINT = "gid_motion.safetensors"  # the name the learned workflow asks for (tests/conftest.py installs it)


@pytest.fixture(scope="module")
def small_picture(comfy_host: ComfyHost) -> str:
    path = comfy_host.input_dir / "gid_test_learned_small.png"
    Image.open(REPO / "samples" / "dandelion.jpg").resize((96, 54)).save(path)
    return path.name


def test_cli_checkpoint_is_listed_and_predicts_in_the_host(comfy_host: ComfyHost, tiny_checkpoint: Path,
                                                           small_picture: str, assert_no_pack_tracebacks) -> None:
    since = comfy_host.log_size()
    options = comfy_host.object_info(refresh=True)["GID_LoadGIDModel"]["input"]["required"]["model_name"][1]["options"]
    assert CHECKPOINT in options
    entry = comfy_host.run(gid_prompt(small_picture, frames=6, model__model_name=CHECKPOINT), timeout=600)
    saved = next(f for f in comfy_host.output_files(entry) if f["node_id"] == "save")
    frames = webp_frames(comfy_host.download(saved))
    assert frames.shape[:3] == (6, 54, 96)
    assert_no_pack_tracebacks(since)


def test_sampling_inputs_reach_the_learned_model_and_are_refused_by_the_prior(
        comfy_host: ComfyHost, tiny_checkpoint: Path, small_picture: str, assert_no_pack_tracebacks) -> None:
    since = comfy_host.log_size()
    predict = comfy_host.object_info()["GID_PredictSpectralVolume"]["input"]["optional"]
    assert all(predict[name][1]["tooltip"] for name in ("steps", "cfg", "loop_guidance"))
    prompt = gid_prompt(small_picture, frames=4, model__model_name=CHECKPOINT)
    prompt["predict"]["inputs"].update(steps=4, cfg=1.0, loop_guidance=300.0)
    entry, progress = comfy_host.run_with_progress(prompt, "predict", timeout=600)
    assert progress and progress[-1]["max"] == 4 and progress[-1]["value"] == 4  # the steps input reached DDIM
    assert_no_pack_tracebacks(since)
    # the procedural prior does not sample: a guidance setting there is an error that names the input
    prompt = gid_prompt(small_picture, frames=4)
    prompt["predict"]["inputs"]["cfg"] = 1.5
    expect_node_error(comfy_host, prompt, "cfg", "only learned checkpoints")


def test_learned_workflow_runs_end_to_end(comfy_host: ComfyHost, tiny_checkpoint: Path,
                                          assert_no_pack_tracebacks) -> None:
    since = comfy_host.log_size()
    workflow = json.loads(LEARNED_WORKFLOW.read_text())
    loader = next(n for n in workflow["nodes"] if n["type"] == "GID_LoadGIDModel")
    assert loader["widgets_values"] == [CHECKPOINT] and loader["properties"]["models"] == []
    prompt = workflow_to_api(workflow, comfy_host.object_info())
    motion = next(n for n in prompt.values() if n["class_type"] == "GID_MotionTexture")
    motion["inputs"]["frames"] = 24  # the shipped 120 frames of the full picture take long on a shared CPU
    loop_id = next(i for i, n in prompt.items() if n["class_type"] == "GID_LoopVideo")
    prompt["exact"] = {"class_type": "SaveAnimatedWEBP",  # lossless copy: the seam check must not see codec steps
                       "inputs": {"images": [loop_id, 0], "fps": [loop_id, 1], "filename_prefix": "gidtest/learned",
                                  "lossless": True, "quality": 100, "method": "fastest"}}
    entry = comfy_host.run(prompt, timeout=900)
    files = [f for f in comfy_host.output_files(entry) if f["type"] == "output"]
    shipped = [f for f in files if f["node_id"] != "exact"]
    assert any(f["filename"].endswith(".webp") for f in shipped), files
    assert any(f["filename"].endswith(".mp4") for f in shipped), files
    frames = webp_frames(comfy_host.download(next(f for f in files if f["node_id"] == "exact")))
    assert len(frames) == 24
    seam, median = seam_and_median(frames)
    assert median > 0.05, "the learned model's motion does not move the picture"
    assert seam <= median, f"wrap step {seam:.3f} is larger than the median step {median:.3f}"
    assert_no_pack_tracebacks(since)


def test_bad_learned_checkpoints_give_clear_errors(comfy_host: ComfyHost, tiny_checkpoint: Path,
                                                   small_picture: str) -> None:
    folder = tiny_checkpoint.parent
    data = tiny_checkpoint.read_bytes()
    (folder / "gid_truncated.safetensors").write_bytes(data[: len(data) * 2 // 3])
    (folder / "gid_pickled.safetensors").write_bytes(pickle.dumps({"state_dict": {"w": [0.0] * 64}}))
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_len])
    config = json.loads(header["__metadata__"]["config"])
    config["unet"]["channels"] *= 2
    header["__metadata__"]["config"] = json.dumps(config)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (folder / "gid_wrong_config.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data[8 + header_len:])
    comfy_host.object_info(refresh=True)

    for name, needle in (("gid_truncated.safetensors", "truncated"),
                         ("gid_pickled.safetensors", "not a valid safetensors file"),
                         ("gid_wrong_config.safetensors", "weights do not match the model config")):
        expect_node_error(comfy_host, gid_prompt(small_picture, frames=4, model__model_name=name), name, needle)
    # no crash: the server still runs the good checkpoint
    entry = comfy_host.run(gid_prompt(small_picture, frames=4, model__model_name=CHECKPOINT), timeout=600)
    assert entry["status"]["status_str"] == "success"
