"""Video to Spectral Volume, Save/Load Spectral Volume inside a real ComfyUI host."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from comfy_host import ComfyHost, PromptRejected
from PIL import Image
from test_pack import expect_node_error, webp_frames

REPO = Path(__file__).resolve().parents[2]
CLIP = "gid_sample_dandelion_sway.mp4"


def extract_prompt(**options: Any) -> dict[str, Any]:
    inputs = {"images": ["parts", 0], "fps": ["parts", 2], "num_bins": 16, "reference_frame": -1, "max_size": 128,
              "camera_motion": "keep", "period": 0, "resample_fps": 0.0}
    inputs.update(options)
    return {
        "video": {"class_type": "LoadVideo", "inputs": {"file": CLIP}},
        "parts": {"class_type": "GetVideoComponents", "inputs": {"video": ["video", 0]}},
        "extract": {"class_type": "GID_VideoToSpectralVolume", "inputs": inputs},
        "save": {"class_type": "GID_SaveSpectralVolume",
                 "inputs": {"spectral_volume": ["extract", 0], "filename_prefix": "gidtest/clip_motion"}},
    }


def test_sample_clip_is_installed_and_nodes_are_documented(comfy_host: ComfyHost, assert_no_pack_tracebacks) -> None:
    assert (comfy_host.input_dir / CLIP).is_file()
    info = comfy_host.object_info()
    for name in ("GID_VideoToSpectralVolume", "GID_SaveSpectralVolume", "GID_LoadSpectralVolume"):
        assert info[name]["category"] == "GID" and len(info[name]["description"]) > 40
        for spec in info[name]["input"]["required"].values():
            if spec[0] in ("INT", "FLOAT", "STRING", "COMBO") or isinstance(spec[0], list):
                assert spec[1].get("tooltip"), (name, spec)
    assert info["GID_SaveSpectralVolume"]["output_node"] is True
    assert_no_pack_tracebacks()


def test_save_then_load_replays_the_clips_motion_on_another_picture(comfy_host: ComfyHost) -> None:
    from gid_engine.spectral.volume import SpectralVolume

    prompt = extract_prompt()
    before = set((comfy_host.output_dir / "gidtest").glob("clip_motion_*.safetensors"))
    prompt["preview"] = {"class_type": "SaveImage", "inputs": {"images": ["extract", 2], "filename_prefix": "gidtest/mp"}}
    entry = comfy_host.run(prompt, timeout=300)
    report = entry["outputs"]["extract"]["gid_video_motion"][0]
    assert report["reference_frame"] == 0 and report["frames_used"] == 48 and report["fps"] == 24.0
    assert report["flow_size"] == [128, 72] and report["reliable_share"] > 0.8
    path, = set((comfy_host.output_dir / "gidtest").glob("clip_motion_*.safetensors")) - before  # one new file
    volume = SpectralVolume.load(path)
    assert (volume.num_bins, volume.period, volume.fps, volume.height, volume.width) == (16, 48, 24.0, 72, 128)
    assert float(volume.band_amplitude()[0, 1]) > 0.1  # the sway moves in the lowest bins
    preview = comfy_host.download(next(f for f in comfy_host.output_files(entry) if f["node_id"] == "preview"))
    assert Image.open(io.BytesIO(preview)).size == (128, 72)

    name = f"gidtest/{path.name} [output]"
    options = comfy_host.object_info(refresh=True)["GID_LoadSpectralVolume"]["input"]["required"]["file"][1]["options"]
    assert name in options
    small = comfy_host.input_dir / "gid_video_test_other.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(small)
    replay = {
        "load": {"class_type": "GID_LoadSpectralVolume", "inputs": {"file": name}},
        "picture": {"class_type": "LoadImage", "inputs": {"image": small.name}},
        "motion": {"class_type": "GID_MotionTexture",
                   "inputs": {"spectral_volume": ["load", 0], "frames": 12, "fps": 24.0, "speed": 1.0, "loop": True,
                              "start_on_picture": False, "start_seconds": 0.0, "calm_start": True}},
        "render": {"class_type": "GID_SoftmaxSplatRender",
                   "inputs": {"image": ["picture", 0], "motion_texture": ["motion", 0], "temperature": 10.0}},
        "save": {"class_type": "SaveAnimatedWEBP",
                 "inputs": {"images": ["render", 0], "fps": ["render", 1], "filename_prefix": "gidtest/replay",
                            "lossless": True, "quality": 100, "method": "fastest"}},
    }
    entry = comfy_host.run(replay, timeout=300)
    frames = webp_frames(comfy_host.download(next(f for f in comfy_host.output_files(entry)
                                                  if f["node_id"] == "save")))
    assert frames.shape == (12, 64, 96, 3) and np.abs(frames[6] - frames[0]).mean() > 1.0


def test_bad_clips_give_clear_errors(comfy_host: ComfyHost) -> None:
    one = extract_prompt()
    one["first"] = {"class_type": "ImageFromBatch", "inputs": {"image": ["parts", 0], "batch_index": 0, "length": 1}}
    one["extract"]["inputs"]["images"] = ["first", 0]
    expect_node_error(comfy_host, one, "images", "at least 2 frames")

    black = extract_prompt(fps=24.0)
    black["black"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 20, "color": 0}}
    black["extract"]["inputs"]["images"] = ["black", 0]
    expect_node_error(comfy_host, black, "all-black")

    with pytest.raises(PromptRejected) as rejected:
        comfy_host.run(extract_prompt(fps=0.0))
    assert "fps" in json.dumps(rejected.value.node_errors)

    expect_node_error(comfy_host, extract_prompt(num_bins=40), "num_bins", "at most 24 bins")

    (comfy_host.input_dir / "gid_not_a_volume.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}" + b" " * 14)
    comfy_host.object_info(refresh=True)
    load = {"load": {"class_type": "GID_LoadSpectralVolume", "inputs": {"file": "gid_not_a_volume.safetensors"}},
            "save": {"class_type": "GID_SaveSpectralVolume",
                     "inputs": {"spectral_volume": ["load", 0], "filename_prefix": "gidtest/never"}}}
    expect_node_error(comfy_host, load, "gid_not_a_volume.safetensors", "spectral volume")
