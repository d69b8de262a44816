"""Interactive Dynamics inside a real ComfyUI host: pull, ring-down, the browser payload, queue-time refusals."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from comfy_host import ComfyHost, PromptRejected, workflow_to_api
from test_pack import sample, webp_frames  # noqa: F401  (sample is a fixture)

REPO = Path(__file__).resolve().parents[2]
BUILTIN = "builtin: procedural motion prior"
PULL_AT = (0.15, 0.6)  # grass left of the big dandelion (the head itself stays still)


def dynamics_prompt(image_name: str, actions: str, frames: int = 12, **controls: Any) -> dict[str, Any]:
    inputs = {"spectral_volume": ["predict", 0], "actions": actions, "frames": frames, "fps": 12.0,
              "damping": 0.3, "damping_model": "rayleigh", "stiffness": 1.0, "strength": 1.0,
              "image": ["load", 0], **controls}
    return {
        "load": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "model": {"class_type": "GID_LoadGIDModel", "inputs": {"model_name": BUILTIN}},
        "predict": {"class_type": "GID_PredictSpectralVolume",
                    "inputs": {"gid_model": ["model", 0], "image": ["load", 0], "seed": 0, "intensity": 1.0}},
        "dynamics": {"class_type": "GID_InteractiveDynamics", "inputs": inputs},
        "render": {"class_type": "GID_SoftmaxSplatRender",
                   "inputs": {"image": ["load", 0], "motion_texture": ["dynamics", 0], "temperature": 0.5,
                              "fps": ["dynamics", 1]}},
        "save": {"class_type": "SaveAnimatedWEBP",
                 "inputs": {"images": ["render", 0], "fps": 12.0, "filename_prefix": "gidtest/dynamics",
                            "lossless": True, "quality": 100, "method": "fastest"}},
    }


def pull(dx: float, dy: float, at=PULL_AT) -> str:
    return json.dumps([{"type": "pull", "at": list(at), "pull": [dx, dy], "release_s": 0}])


def saved_frames(comfy_host: ComfyHost, entry: dict[str, Any]) -> np.ndarray:
    info = next(f for f in comfy_host.output_files(entry) if f["node_id"] == "save")
    return webp_frames(comfy_host.download(info))


def flow_at(before: np.ndarray, after: np.ndarray, at, radius: int = 6) -> np.ndarray:
    """Median optical flow (pixels) from `before` to `after` around the point at fractions `at`."""
    grey = [cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in (before, after)]
    flow = cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, 0.5, 3, 9, 5, 5, 1.1, 0)
    h, w = grey[0].shape
    x, y = int(at[0] * w), int(at[1] * h)
    patch = flow[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1]
    return np.median(patch.reshape(-1, 2), axis=0)


def assert_moved_as_pulled(moved: np.ndarray, pull) -> None:
    """Seen in the frames (optical flow of a small picture, so loose): the right way, a fair part of the way."""
    angle = np.degrees(np.arctan2(moved[1], moved[0]) - np.arctan2(pull[1], pull[0]))
    assert abs((angle + 180) % 360 - 180) < 35, (moved, pull)
    assert np.hypot(*moved) > 0.2 * np.hypot(*pull), (moved, pull)


def test_schema_is_a_drop_in_for_motion_texture(comfy_host: ComfyHost) -> None:
    node = comfy_host.object_info()["GID_InteractiveDynamics"]
    assert node["category"] == "GID" and node["display_name"] == "Interactive Dynamics"
    assert list(node["input"]["required"]) == ["spectral_volume", "actions", "frames", "fps", "damping",
                                               "damping_model", "stiffness", "strength"]
    assert list(node["input"]["optional"]) == ["image", "path", "tracks"]
    actions = node["input"]["required"]["actions"]
    assert actions[0] == "STRING" and actions[1]["default"] == "[]" and '"pull"' in actions[1]["tooltip"]
    assert node["input"]["required"]["damping_model"][1]["options"] == ["rayleigh", "per_mode"]
    assert node["output"] == ["MOTION_TEXTURE", "FLOAT"]


def test_pull_moves_the_picture_there_and_rings_down(comfy_host: ComfyHost, sample: str) -> None:
    entry = comfy_host.run(dynamics_prompt(sample, pull(6, 0), frames=24, damping=0.4), timeout=300)
    frames = saved_frames(comfy_host, entry)
    picture = frames_of_picture(comfy_host, sample)
    assert len(frames) == 24
    assert_moved_as_pulled(flow_at(picture, frames[0], PULL_AT), (6, 0))
    change = [float(np.abs(f - picture).mean()) for f in frames]
    assert change[0] > 0.3 and change[-1] < 0.5 * change[0]  # released at frame 0, then it settles

    up = saved_frames(comfy_host, comfy_host.run(dynamics_prompt(sample, pull(0, -6), frames=2), timeout=300))
    assert_moved_as_pulled(flow_at(picture, up[0], PULL_AT, radius=3), (0, -6))

    payload = entry["outputs"]["dynamics"]["gid_dynamics"][0]
    assert (payload["width"], payload["height"]) == (128, 72) and payload["modes"] == 16
    shapes = np.frombuffer(base64.b64decode(payload["shapes_int16"]), dtype="<i2")
    assert shapes.size == payload["modes"] * 2 * payload["grid_width"] * payload["grid_height"]
    assert len(payload["omegas"]) == payload["modes"] and payload["direction_floor"] > 0
    reach = np.frombuffer(base64.b64decode(payload["reach_int16"]), dtype="<i2")
    assert reach.size == payload["grid_width"] * payload["grid_height"] and reach.max() * payload["reach_scale"] > 1
    assert payload["notes"] == []  # the 6 px pull is within the point's reach

    far = comfy_host.run(dynamics_prompt(sample, pull(200, 0), frames=1), timeout=300)
    (note,) = far["outputs"]["dynamics"]["gid_dynamics"][0]["notes"]
    assert note.startswith("actions[0]: this point can move about") and "it was pulled 200.0 px" in note
    assert payload["omega_range"][0] == pytest.approx(2 * np.pi * 0.2) and payload["damping"] == 0.4
    assert payload["picture"]["type"] == "temp" and entry["outputs"]["dynamics"]["gid_motion"]


def frames_of_picture(comfy_host: ComfyHost, name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(comfy_host.input_dir / name).convert("RGB"), dtype=np.int16)


def test_no_action_leaves_every_frame_the_picture(comfy_host: ComfyHost, sample: str) -> None:
    frames = saved_frames(comfy_host, comfy_host.run(dynamics_prompt(sample, "[]", frames=4), timeout=300))
    assert np.abs(frames - frames_of_picture(comfy_host, sample)).max() == 0


def test_bad_actions_are_refused_when_queued(comfy_host: ComfyHost, sample: str) -> None:
    cases = (
        (pull(5, 0, at=(1.5, 0.5)), "actions[0].at[0]: 1.5 is out of range"),
        ('[{"type": "pull", "at": [0.5, 0.5], "pull": [NaN, 0]}]', "expected a finite number"),
        ('[{"type": "pull", "at": [0.5, 0.5], "pull": [1, 0], "mass": 2}]', "unknown key(s) 'mass'"),
        ('[{"type": "pull"', "actions: not valid JSON"),
    )
    for actions, needle in cases:
        with pytest.raises(PromptRejected) as rejected:
            comfy_host.run(dynamics_prompt(sample, actions), timeout=300)
        message = json.dumps(rejected.value.node_errors["dynamics"])
        assert "actions" in message and needle in message, message
    entry = comfy_host.run(dynamics_prompt(sample, pull(2, 1), frames=2), timeout=300)  # the server keeps serving
    assert entry["status"]["status_str"] == "success"


def test_shipped_interactive_workflow_converts_and_rings_down(comfy_host: ComfyHost) -> None:
    workflow = json.loads((REPO / "workflows" / "interactive_dynamics.json").read_text())
    prompt = workflow_to_api(workflow, comfy_host.object_info())
    dynamics = next(n for n in prompt.values() if n["class_type"] == "GID_InteractiveDynamics")
    assert json.loads(dynamics["inputs"]["actions"])[0]["type"] == "pull"
    dynamics["inputs"]["frames"] = 30  # the shipped 120 frames at 768 px take long on a small CPU
    save_id = next(i for i, n in prompt.items() if n["class_type"] == "GID_SaveLoop")
    entry = comfy_host.run(prompt, timeout=600)
    info = next(f for f in comfy_host.output_files(entry) if f["node_id"] == save_id)
    frames = webp_frames(comfy_host.download(info))
    assert len(frames) == 30
    first_step = float(np.abs(frames[1] - frames[0]).mean())
    assert float(np.abs(frames[0] - frames[-1]).mean()) > first_step  # it moved back from the pulled state
