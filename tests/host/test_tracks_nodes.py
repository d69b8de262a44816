"""Motion tracks in a real ComfyUI 0.3.75 host (no core TRACKS type there): Motion Tracks loads and writes KJNodes
coordinates, and a KJNodes-format path drives Interactive Dynamics."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from comfy_host import ComfyHost
from test_dynamics_nodes import dynamics_prompt, flow_at, frames_of_picture, saved_frames
from test_pack import expect_node_error, sample  # noqa: F401  (sample is a fixture)


def tracks_prompt(image_name: str, count: int = 12, frames: int = 8) -> dict[str, Any]:
    prompt = dynamics_prompt(image_name, "[]")
    for name in ("dynamics", "render", "save"):
        del prompt[name]
    prompt["motion"] = {"class_type": "GID_MotionTexture",
                        "inputs": {"spectral_volume": ["predict", 0], "frames": frames, "fps": 12.0, "speed": 1.0,
                                   "loop": True, "start_on_picture": False, "start_seconds": 0.0,
                                   "calm_start": True}}
    prompt["tracks"] = {"class_type": "GID_MotionTracks",
                        "inputs": {"motion_texture": ["motion", 0], "count": count, "image": ["load", 0]}}
    prompt["show"] = {"class_type": "PreviewAny", "inputs": {"source": ["tracks", 1]}}
    prompt["length"] = {"class_type": "PreviewAny", "inputs": {"source": ["tracks", 2]}}
    return prompt


def test_tracks_node_is_listed_with_a_tracks_output(comfy_host: ComfyHost, assert_no_pack_tracebacks) -> None:
    info = comfy_host.object_info()
    node = info["GID_MotionTracks"]
    assert node["display_name"] == "Motion Tracks" and node["category"] == "GID"
    assert node["output"] == ["TRACKS", "STRING", "INT"]
    assert node["output_name"] == ["tracks", "coordinates", "track_length"]
    assert list(node["input"]["required"]) == ["motion_texture", "count"]
    assert list(node["input"]["optional"]) == ["image", "mask", "batch_index"]
    dynamics = info["GID_InteractiveDynamics"]["input"]["optional"]
    assert dynamics["path"][0] == "STRING" and dynamics["path"][1]["forceInput"] is True
    assert dynamics["tracks"][0] == "TRACKS"
    assert "WanMoveTracksFromCoords" not in info  # 0.3.75: the pack brings TRACKS itself
    assert_no_pack_tracebacks()


def test_tracks_come_out_as_coordinate_json(comfy_host: ComfyHost, sample: str) -> None:
    entry = comfy_host.run(tracks_prompt(sample), timeout=300)
    coordinates = json.loads(entry["outputs"]["show"]["text"][0])
    assert entry["outputs"]["length"]["text"][0] == "8"
    assert len(coordinates) == 10 and all(len(track) == 8 for track in coordinates)  # 5 x 2 on 128x72
    points = np.array([[[p["x"], p["y"]] for p in track] for track in coordinates])  # [tracks, frames, 2]
    assert points[..., 0].min() > -1 and points[..., 0].max() < 129 and points[..., 1].max() < 73
    travel = np.linalg.norm(points - points[:, :1], axis=-1).max(axis=1)
    assert travel.max() > 0.2  # the dandelion sways, and its tracks say so


def test_a_kjnodes_path_pulls_the_picture_along_it(comfy_host: ComfyHost, sample: str) -> None:
    """A 7-point KJNodes path through the grass left of the big dandelion from (19, 43) to (25, 43) at 12 fps:
    frame 0 is the picture, frame 6 (the release) shows that spot moved to the right."""
    path = json.dumps([{"x": 19 + i, "y": 43} for i in range(7)])
    prompt = dynamics_prompt(sample, "[]", frames=8)
    prompt["spline"] = {"class_type": "PrimitiveStringMultiline", "inputs": {"value": path}}
    prompt["dynamics"]["inputs"]["path"] = ["spline", 0]
    frames = saved_frames(comfy_host, comfy_host.run(prompt, timeout=300))
    picture = frames_of_picture(comfy_host, sample)
    assert np.abs(frames[0] - picture).max() == 0  # the drag eases in from rest
    at = (19.5 / 128, 43.5 / 72)
    moved = flow_at(picture, frames[6], at, radius=3)
    assert moved[0] > 1.0 and abs(moved[1]) < 0.5 * moved[0], moved

    prompt["spline"]["inputs"]["value"] = json.dumps([{"x": 51, "y": 22}])
    expect_node_error(comfy_host, prompt, "path[0]: a pull needs at least two points")
    prompt["spline"]["inputs"]["value"] = '[{"x": 51, "y": 22}, {"x": 500, "y": 22}]'
    expect_node_error(comfy_host, prompt, "path[0][1]: (500.0, 22.0) is outside the 128x72 picture")
