"""The real-host harness itself: server life cycle, prompt round trips, downloads, events, UI->API conversion.

Nothing here uses the pack's own nodes, so these tests stay meaningful while the pack is being written.
"""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import av
import pytest
from comfy_host import (
    ComfyHost,
    PromptFailed,
    PromptRejected,
    WorkflowConversionError,
    apply_assignments,
    find_tracebacks,
    map_widget_values,
    point_load_images,
    widget_specs,
    workflow_to_api,
)
from comfy_host import (
    main as cli_main,
)
from PIL import Image


def empty_image(width: int, height: int, batch: int, color: int) -> dict[str, Any]:
    inputs = {"width": width, "height": height, "batch_size": batch, "color": color}
    return {"class_type": "EmptyImage", "inputs": inputs}


def rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF


# ------------------------------------------------------------------------------------------------
# Server


def test_object_info_lists_core_nodes(comfy_host: ComfyHost) -> None:
    info = comfy_host.object_info()
    for name in ("EmptyImage", "SaveAnimatedWEBP", "CreateVideo", "SaveVideo", "LoadImage", "KSampler", "PrimitiveInt"):
        assert name in info, name
    assert info["EmptyImage"]["input_order"]["required"] == ["width", "height", "batch_size", "color"]
    assert "GIDHarnessProgress" in info  # the probe node linked next to the pack
    assert comfy_host.system_stats()["system"]["comfyui_version"] == "0.3.75"


def test_animated_webp_round_trip(comfy_host: ComfyHost) -> None:
    # Four distinct frames: libwebp's animation encoder merges identical consecutive frames into one longer
    # frame, so a plain EmptyImage batch of 4 comes back as a single-frame (non-animated) WebP.
    colors = [0x3366CC, 0xCC6633, 0x33CC66, 0x000000]
    prompt: dict[str, Any] = {f"c{i}": empty_image(64, 64, 1, c) for i, c in enumerate(colors)}
    prompt["b1"] = {"class_type": "ImageBatch", "inputs": {"image1": ["c0", 0], "image2": ["c1", 0]}}
    prompt["b2"] = {"class_type": "ImageBatch", "inputs": {"image1": ["b1", 0], "image2": ["c2", 0]}}
    prompt["b3"] = {"class_type": "ImageBatch", "inputs": {"image1": ["b2", 0], "image2": ["c3", 0]}}
    prompt["save"] = {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {"images": ["b3", 0], "filename_prefix": "harness/webp", "fps": 4.0, "lossless": True,
                   "quality": 80, "method": "default"},
    }
    entry = comfy_host.run(prompt, timeout=120)
    assert entry["status"]["status_str"] == "success"
    files = comfy_host.output_files(entry)
    assert [(f["node_id"], f["type"], f["subfolder"]) for f in files] == [("save", "output", "harness")]
    assert files[0]["filename"].endswith(".webp")
    with Image.open(io.BytesIO(comfy_host.download(files[0]))) as im:
        assert im.format == "WEBP"
        assert im.is_animated and im.n_frames == 4
        assert im.size == (64, 64)
        for frame, color in enumerate(colors):
            im.seek(frame)
            assert im.convert("RGB").getpixel((10, 10)) == rgb(color)
            assert im.info["duration"] == 250


def test_save_video_mp4_h264(comfy_host: ComfyHost) -> None:
    prompt = {
        "1": empty_image(64, 48, 8, 0x20A040),
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
        "3": {"class_type": "SaveVideo",
              "inputs": {"video": ["2", 0], "filename_prefix": "harness/video", "format": "mp4", "codec": "h264"}},
    }
    entry = comfy_host.run(prompt, timeout=180)
    (video,) = comfy_host.output_files(entry)
    assert video["filename"].endswith(".mp4")
    data = comfy_host.download(video)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        frames = list(container.decode(stream))
    assert len(frames) == 8


def test_rejected_prompt_then_next_prompt_runs(comfy_host: ComfyHost) -> None:
    with pytest.raises(PromptRejected) as rejected:
        comfy_host.queue({"1": {"class_type": "NoSuchNode_GIDHarness", "inputs": {}}})
    assert rejected.value.status == 400
    assert rejected.value.error["type"] == "invalid_prompt"
    assert "NoSuchNode_GIDHarness" in rejected.value.error["message"]

    with pytest.raises(PromptRejected) as bad_input:
        comfy_host.queue({"1": empty_image(8, 8, 1, 0),
                          "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "harness/missing"}}})
    assert "2" in bad_input.value.node_errors
    assert "images" in str(bad_input.value)

    save = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "harness/after"}}
    entry = comfy_host.run({"1": empty_image(16, 16, 1, 0x010203), "2": save})
    assert len(comfy_host.output_files(entry)) == 1


def test_execution_error_raises_prompt_failed(comfy_host: ComfyHost) -> None:
    mark = comfy_host.log_size()
    prompt = {"1": empty_image(8, 8, 1, 0),
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "../../escape"}}}
    with pytest.raises(PromptFailed) as failed:
        comfy_host.run(prompt, timeout=60)
    err = failed.value.execution_error
    assert err is not None and err["node_id"] == "2" and err["node_type"] == "SaveImage"
    assert "outside the output folder" in str(failed.value)
    assert any("outside the output folder" in tb for tb in comfy_host.tracebacks(since=mark))
    # check=False hands back the entry instead of raising
    entry = comfy_host.run({**prompt, "1": empty_image(9, 9, 1, 0)}, timeout=60, check=False)
    assert entry["status"]["status_str"] == "error"


def test_websocket_reports_progress_and_finish(comfy_host: ComfyHost) -> None:
    prompt = {
        "1": empty_image(8, 8, 2, 0),
        "2": {"class_type": "GIDHarnessProgress", "inputs": {"images": ["1", 0], "steps": 5}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    with comfy_host.listen() as events:
        prompt_id = comfy_host.queue(prompt, client_id=events.client_id)
        comfy_host.wait(prompt_id, timeout=60)
        assert events.wait_finished(prompt_id, timeout=10)
        progress = events.progress_events(prompt_id)
        kinds = [kind for kind, _ in events.events_for(prompt_id)]
    assert [(p["node"], p["value"], p["max"]) for p in progress] == [("2", i, 5) for i in range(1, 6)]
    assert "execution_start" in kinds and "execution_success" in kinds
    assert kinds.count("executed") == 1  # only the output node reports a UI result


def test_interrupt_and_queue_state(comfy_host: ComfyHost) -> None:
    state = comfy_host.queue_state()
    assert state == {"queue_running": [], "queue_pending": []}
    comfy_host.interrupt()  # nothing running: must be a harmless no-op
    entry = comfy_host.run({"1": empty_image(8, 8, 1, 0x0000FF), "2": {"class_type": "PreviewImage",
                                                                       "inputs": {"images": ["1", 0]}}})
    assert comfy_host.output_files(entry)[0]["type"] == "temp"


# ------------------------------------------------------------------------------------------------
# UI workflow -> API prompt, against a hand-written object_info shaped like the real one (V1 and V3 forms)

OBJECT_INFO: dict[str, Any] = {
    "LoadImage": {
        "input": {"required": {"image": [["example.png", "photo.png"], {"image_upload": True}]}},
        "input_order": {"required": ["image"]},
        "output": ["IMAGE", "MASK"], "display_name": "Load Image",
    },
    "KSampler": {
        "input": {"required": {
            "model": ["MODEL", {"tooltip": "The model used for denoising the input latent."}],
            "seed": ["INT", {"default": 0, "min": 0, "max": 18446744073709551615, "control_after_generate": True}],
            "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
            "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}],
            "sampler_name": [["euler", "dpmpp_2m"]],
            "scheduler": [["simple", "karras"]],
            "positive": ["CONDITIONING"],
            "negative": ["CONDITIONING"],
            "latent_image": ["LATENT"],
            "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}],
        }},
        "input_order": {"required": ["model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive",
                                     "negative", "latent_image", "denoise"]},
        "output": ["LATENT"], "display_name": "KSampler",
    },
    "EmptyImage": {
        "input": {"required": {
            "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            "color": ["INT", {"default": 0, "min": 0, "max": 16777215, "step": 1, "display": "color"}],
        }},
        "input_order": {"required": ["width", "height", "batch_size", "color"]},
        "output": ["IMAGE"], "display_name": "EmptyImage",
    },
    "PrimitiveInt": {  # V3 node: control_after_generate on a non-seed INT
        "input": {"required": {"value": ["INT", {"min": -9223372036854775807, "max": 9223372036854775807,
                                                 "control_after_generate": True}]}},
        "input_order": {"required": ["value"]},
        "output": ["INT"], "display_name": "Int",
    },
    "ImageInvert": {
        "input": {"required": {"image": ["IMAGE"]}}, "input_order": {"required": ["image"]},
        "output": ["IMAGE"], "display_name": "Invert Image",
    },
    "SaveVideo": {  # V3 node: combos as ["COMBO", {"options": [...]}], hidden inputs
        "input": {"required": {
            "video": ["VIDEO", {}],
            "filename_prefix": ["STRING", {"default": "video/ComfyUI", "multiline": False}],
            "format": ["COMBO", {"default": "auto", "multiselect": False, "options": ["auto", "mp4"]}],
            "codec": ["COMBO", {"default": "auto", "multiselect": False, "options": ["auto", "h264"]}],
        }, "hidden": {"prompt": ["PROMPT"], "extra_pnginfo": ["EXTRA_PNGINFO"]}},
        "input_order": {"required": ["video", "filename_prefix", "format", "codec"],
                        "hidden": ["prompt", "extra_pnginfo"]},
        "output": [], "display_name": "Save Video",
    },
    "SaveAnimatedWEBP": {
        "input": {"required": {
            "images": ["IMAGE"],
            "filename_prefix": ["STRING", {"default": "ComfyUI"}],
            "fps": ["FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}],
            "lossless": ["BOOLEAN", {"default": True}],
            "quality": ["INT", {"default": 80, "min": 0, "max": 100}],
            "method": [["default", "fastest", "slowest"]],
        }, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}},
        "input_order": {"required": ["images", "filename_prefix", "fps", "lossless", "quality", "method"],
                        "hidden": ["prompt", "extra_pnginfo"]},
        "output": [], "display_name": "SaveAnimatedWEBP",
    },
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
        "input_order": {"required": ["images", "filename_prefix"]},
        "output": [], "display_name": "Save Image",
    },
    "ForcedText": {  # an old-style node whose STRING input is socket-only
        "input": {"required": {"text": ["STRING", {"forceInput": True}], "count": ["INT", {"default": 1}]},
                  "optional": {"label": ["STRING", {"default": "x"}]}},
        "input_order": {"required": ["text", "count"], "optional": ["label"]},
        "output": ["STRING"], "display_name": "Forced Text",
    },
    "MultiPick": {
        "input": {"required": {"tags": ["COMBO", {"options": ["a", "b", "c"], "multiselect": True}]}},
        "input_order": {"required": ["tags"]},
        "output": ["STRING"], "display_name": "Multi Pick",
    },
    "SeededCombo": {
        "input": {"required": {"choice": ["COMBO", {"options": ["a", "b"], "control_after_generate": True}],
                               "after": ["INT", {"default": 3}]}},
        "input_order": {"required": ["choice", "after"]},
        "output": ["STRING"], "display_name": "Seeded Combo",
    },
}


def ui_node(node_id: int, kind: str, widgets: Any = None, inputs: list[dict[str, Any]] | None = None,
            outputs: list[dict[str, Any]] | None = None, mode: int = 0, **extra: Any) -> dict[str, Any]:
    node = {"id": node_id, "type": kind, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": node_id,
            "mode": mode, "inputs": inputs or [], "outputs": outputs or [], "properties": {"Node name for S&R": kind}}
    if widgets is not None:
        node["widgets_values"] = widgets
    node.update(extra)
    return node


def sample_workflow() -> dict[str, Any]:
    """LoadImage -> ImageInvert (bypassed) -> Reroute -> SaveAnimatedWEBP; EmptyImage with its width converted
    to an input fed by PrimitiveInt -> SaveImage, plus a muted SaveImage, a Note and an unconnected KSampler."""
    nodes = [
        ui_node(1, "LoadImage", ["photo.png", "image"],
                outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [1]},
                         {"name": "MASK", "type": "MASK", "links": None}]),
        ui_node(2, "ImageInvert", [], mode=4,
                inputs=[{"name": "image", "type": "IMAGE", "link": 1}],
                outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [2]}]),
        ui_node(3, "Reroute", None, inputs=[{"name": "", "type": "*", "link": 2}],
                outputs=[{"name": "", "type": "IMAGE", "links": [3]}], properties={"showOutputText": False}),
        ui_node(4, "SaveAnimatedWEBP", ["harness/ui", 4, True, 80, "default"],
                inputs=[{"name": "images", "type": "IMAGE", "link": 3}]),
        ui_node(5, "PrimitiveInt", [40, "fixed"], outputs=[{"name": "INT", "type": "INT", "links": [4]}]),
        ui_node(6, "EmptyImage", [512, 24, 1, 0xFF8000],
                inputs=[{"name": "width", "type": "INT", "widget": {"name": "width"}, "link": 4}],
                outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [5, 6]}]),
        ui_node(7, "SaveImage", ["harness/ui_empty"], inputs=[{"name": "images", "type": "IMAGE", "link": 5}]),
        ui_node(8, "SaveImage", ["harness/muted"], mode=2, inputs=[{"name": "images", "type": "IMAGE", "link": 6}]),
        ui_node(9, "Note", ["a note that must not reach the server"]),
        ui_node(10, "KSampler", [123456789, "randomize", 30, 6.5, "dpmpp_2m", "karras", 0.75],
                inputs=[{"name": "model", "type": "MODEL", "link": None},
                        {"name": "positive", "type": "CONDITIONING", "link": None},
                        {"name": "negative", "type": "CONDITIONING", "link": None},
                        {"name": "latent_image", "type": "LATENT", "link": None}],
                outputs=[{"name": "LATENT", "type": "LATENT", "links": []}], title="My sampler"),
    ]
    links = [
        [1, 1, 0, 2, 0, "IMAGE"],
        [2, 2, 0, 3, 0, "IMAGE"],
        [3, 3, 0, 4, 0, "IMAGE"],
        [4, 5, 0, 6, 0, "INT"],
        [5, 6, 0, 7, 0, "IMAGE"],
        [6, 6, 0, 8, 0, "IMAGE"],
    ]
    return {"id": "00000000-0000-0000-0000-000000000000", "revision": 0, "last_node_id": 10, "last_link_id": 6,
            "nodes": nodes, "links": links, "groups": [], "config": {}, "extra": {}, "version": 0.4}


def test_workflow_to_api_sample() -> None:
    prompt = workflow_to_api(sample_workflow(), OBJECT_INFO)
    assert set(prompt) == {"1", "4", "5", "6", "7", "10"}  # bypassed, muted, Reroute and Note left out
    assert prompt["1"] == {"class_type": "LoadImage", "inputs": {"image": "photo.png"},
                           "_meta": {"title": "Load Image"}}
    # through the Reroute and the bypassed ImageInvert straight to LoadImage
    assert prompt["4"]["inputs"] == {"images": ["1", 0], "filename_prefix": "harness/ui", "fps": 4, "lossless": True,
                                     "quality": 80, "method": "default"}
    assert prompt["5"]["inputs"] == {"value": 40}  # "fixed" is the control_after_generate value, not an input
    # the converted widget keeps its place in widgets_values but the link wins
    assert prompt["6"]["inputs"] == {"width": ["5", 0], "height": 24, "batch_size": 1, "color": 0xFF8000}
    assert prompt["7"]["inputs"] == {"images": ["6", 0], "filename_prefix": "harness/ui_empty"}
    assert prompt["10"]["inputs"] == {"seed": 123456789, "steps": 30, "cfg": 6.5, "sampler_name": "dpmpp_2m",
                                      "scheduler": "karras", "denoise": 0.75}
    assert prompt["10"]["_meta"] == {"title": "My sampler"}


def test_widget_specs_follow_frontend_rules() -> None:
    specs = {w["name"]: w["extra_values"] for w in widget_specs(OBJECT_INFO["KSampler"])}
    assert specs == {"seed": 1, "steps": 0, "cfg": 0, "sampler_name": 0, "scheduler": 0, "denoise": 0}
    # a seed-named INT gets a control widget even without the flag; an explicit False switches it off
    plain = {"input": {"required": {"seed": ["INT", {}], "noise_seed": ["INT", {"control_after_generate": False}]}}}
    assert [w["extra_values"] for w in widget_specs(plain)] == [1, 0]
    # combos with control_after_generate carry a control value and a filter string
    assert [w["extra_values"] for w in widget_specs(OBJECT_INFO["SeededCombo"])] == [2, 0]
    assert map_widget_values({"id": 1, "type": "SeededCombo", "widgets_values": ["b", "randomize", "", 7]},
                             OBJECT_INFO["SeededCombo"]) == {"choice": "b", "after": 7}
    assert [w["name"] for w in widget_specs(OBJECT_INFO["ForcedText"])] == ["count", "label"]


def test_workflow_to_api_legacy_values() -> None:
    # widgets_values saved while forceInput inputs still were widgets: the frontend drops those slots
    node = {"id": 3, "type": "ForcedText", "widgets_values": ["stale text", 5, "y"]}
    assert map_widget_values(node, OBJECT_INFO["ForcedText"]) == {"count": 5, "label": "y"}
    # dict-shaped widgets_values (VideoHelperSuite style) map by name; missing values take defaults
    node = {"id": 4, "type": "SaveAnimatedWEBP", "widgets_values": {"fps": 12, "quality": 90, "videopreview": {}}}
    assert map_widget_values(node, OBJECT_INFO["SaveAnimatedWEBP"]) == {
        "filename_prefix": "ComfyUI", "fps": 12, "lossless": True, "quality": 90, "method": "default"}
    # too-short lists are padded with defaults (a node that gained a widget since the workflow was saved)
    node = {"id": 5, "type": "SaveVideo", "widgets_values": ["clips/x"]}
    assert map_widget_values(node, OBJECT_INFO["SaveVideo"]) == {"filename_prefix": "clips/x", "format": "auto",
                                                                  "codec": "auto"}


def test_workflow_to_api_frontend_primitive_and_lists() -> None:
    wf = sample_workflow()
    # the legacy frontend-only PrimitiveNode: its value is inlined into the target input
    wf["nodes"][4] = ui_node(5, "PrimitiveNode", [33, "increment"],
                             outputs=[{"name": "INT", "type": "INT", "widget": {"name": "width"}, "links": [4]}])
    wf["nodes"].append(ui_node(11, "MultiPick", [["a", "b"]]))  # list values are wrapped, else read as links
    prompt = workflow_to_api(wf, OBJECT_INFO)
    assert "5" not in prompt
    assert prompt["6"]["inputs"]["width"] == 33
    assert prompt["11"]["inputs"] == {"tags": {"__value__": ["a", "b"]}}


def test_workflow_to_api_muted_source_and_bypass_without_match() -> None:
    wf = sample_workflow()
    wf["nodes"][5]["mode"] = 2  # mute EmptyImage: SaveImage 7 loses its images input, as in the frontend
    prompt = workflow_to_api(wf, OBJECT_INFO)
    assert "6" not in prompt and prompt["7"]["inputs"] == {"filename_prefix": "harness/ui_empty"}

    wf = sample_workflow()
    wf["nodes"][0]["mode"] = 4  # bypass LoadImage: it has no IMAGE input to pass through
    assert "images" not in workflow_to_api(wf, OBJECT_INFO)["4"]["inputs"]
    with pytest.raises(WorkflowConversionError, match=r"node 1 \(LoadImage\) is bypassed"):
        workflow_to_api(wf, OBJECT_INFO, strict_bypass=True)


def test_workflow_to_api_errors() -> None:
    wf = sample_workflow()
    wf["nodes"].append(ui_node(11, "GIDDoesNotExist", [1]))
    with pytest.raises(WorkflowConversionError, match=r"node 11 \(GIDDoesNotExist\).*unknown to this ComfyUI"):
        workflow_to_api(wf, OBJECT_INFO)

    wf = sample_workflow()
    wf["nodes"][9]["widgets_values"] = [123, 30, 6.5, "dpmpp_2m", "karras", 0.75]  # no control value after seed
    with pytest.raises(WorkflowConversionError, match="node 10 .*control_after_generate"):
        workflow_to_api(wf, OBJECT_INFO)

    wf = sample_workflow()
    wf["nodes"][5]["widgets_values"] = [512, "tall", 1, 0]
    with pytest.raises(WorkflowConversionError, match="'height' expects INT"):
        workflow_to_api(wf, OBJECT_INFO)

    wf = sample_workflow()
    wf["definitions"] = {"subgraphs": [{"id": "5f1c3c5e-0000-4000-8000-000000000000", "nodes": []}]}
    wf["nodes"].append(ui_node(12, "5f1c3c5e-0000-4000-8000-000000000000"))
    with pytest.raises(WorkflowConversionError, match="subgraph"):
        workflow_to_api(wf, OBJECT_INFO)


def test_prompt_editing_helpers() -> None:
    prompt = workflow_to_api(sample_workflow(), OBJECT_INFO)
    assert point_load_images(prompt, "mine.png") == ["1"]
    apply_assignments(prompt, ["10.seed=7", "4.filename_prefix=out/x", "6.height=32", "4.lossless=false"])
    assert prompt["1"]["inputs"]["image"] == "mine.png"
    assert prompt["10"]["inputs"]["seed"] == 7 and prompt["6"]["inputs"]["height"] == 32
    assert prompt["4"]["inputs"]["filename_prefix"] == "out/x" and prompt["4"]["inputs"]["lossless"] is False
    with pytest.raises(KeyError):
        apply_assignments(prompt, ["99.seed=1"])


def test_find_tracebacks() -> None:
    log = (
        "Starting server\n"
        "Traceback (most recent call last):\n"
        '  File "/x/custom_nodes/comfyui-gid/nodes/model_nodes.py", line 8, in <module>\n'
        "    from ..gid_engine import nope\n"
        "ImportError: cannot import name 'nope'\n"
        "\n"
        "Cannot import /x/custom_nodes/comfyui-gid module for custom nodes: cannot import name 'nope'\n"
        "Traceback (most recent call last):\n"
        '  File "/x/comfy_extras/nodes_canny.py", line 1, in <module>\n'
        "ModuleNotFoundError: No module named 'kornia'\n"
    )
    blocks = find_tracebacks(log)
    assert len(blocks) == 2
    assert blocks[0].endswith("ImportError: cannot import name 'nope'")
    assert "gid_engine" in blocks[0] and "kornia" in blocks[1] and "Cannot import" not in blocks[0]


# ------------------------------------------------------------------------------------------------
# UI workflow end to end on the real server, and the CLI


def test_ui_workflow_runs_on_host(comfy_host: ComfyHost) -> None:
    photo = comfy_host.input_dir / "harness_photo.png"
    Image.new("RGB", (32, 16), (200, 40, 10)).save(photo)
    wf = sample_workflow()
    wf["nodes"][0]["widgets_values"] = [photo.name, "image"]
    prompt = workflow_to_api(wf, comfy_host.object_info())
    entry = comfy_host.run(prompt, timeout=120, extra_data={"extra_pnginfo": {"workflow": wf}})
    files = {f["node_id"]: f for f in comfy_host.output_files(entry)}
    assert set(files) == {"4", "7"}
    with Image.open(io.BytesIO(comfy_host.download(files["4"]))) as im:
        # not inverted: the bypassed ImageInvert was routed around
        assert im.size == (32, 16) and im.convert("RGB").getpixel((5, 5)) == (200, 40, 10)
    with Image.open(io.BytesIO(comfy_host.download(files["7"]))) as im:
        assert im.size == (40, 24)  # width came from PrimitiveInt through the converted widget input
        assert json.loads(im.info["workflow"])["nodes"][0]["type"] == "LoadImage"


def test_cli_run_workflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = sample_workflow()
    wf_path = tmp_path / "wf.json"
    wf_path.write_text(json.dumps(wf))
    photo = tmp_path / "in.png"
    Image.new("RGB", (20, 10), (1, 2, 250)).save(photo)
    out = tmp_path / "out"
    code = cli_main(["run-workflow", str(wf_path), "--out", str(out), "--input-image", str(photo),
                     "--set", "6.height=12", "--set", "4.filename_prefix=cli/anim", "--timeout", "120",
                     "--work-dir", str(tmp_path / "work")])
    written = [Path(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0
    assert {p.relative_to(out).parts[0] for p in written} == {"cli", "harness"}
    assert all(p.is_file() for p in written)
    anim = next(p for p in written if p.suffix == ".webp")
    with Image.open(anim) as im:
        assert im.size == (20, 10) and im.convert("RGB").getpixel((3, 3)) == (1, 2, 250)
    still = next(p for p in written if p.suffix == ".png")
    with Image.open(still) as im:
        assert im.size == (40, 12)

    broken = copy.deepcopy(wf)
    broken["nodes"][6]["widgets_values"] = ["../../escape"]
    wf_path.write_text(json.dumps(broken))
    code = cli_main(["run-workflow", str(wf_path), "--out", str(out), "--input-image", str(photo),
                     "--timeout", "120", "--work-dir", str(tmp_path / "work2")])
    assert code == 1
    assert "outside the output folder" in capsys.readouterr().err
