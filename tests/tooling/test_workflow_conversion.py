"""UI workflow -> API prompt (scripts/comfy_host/workflow.py), one frontend rule per test, on node definitions
shaped like the real /object_info ones (V1 list combos, V3 COMBO options, forceInput, control_after_generate).

sample_ui_workflow.json: LoadImage -> ImageInvert (bypassed) -> Reroute -> SaveAnimatedWEBP; EmptyImage with its
width converted to an input fed by PrimitiveInt -> SaveImage, plus a muted SaveImage, a Note and an unconnected
KSampler. The browser tests queue the same file through the real frontend and compare.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from comfy_host import WorkflowConversionError, map_widget_values, widget_specs, workflow_to_api

SAMPLE = Path(__file__).resolve().parent / "sample_ui_workflow.json"


def node_def(required: dict[str, Any], optional: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    sections = {"required": required, "optional": optional or {}}
    return {"input": sections, "input_order": {k: list(v) for k, v in sections.items()}, "output": [], **extra}


def ints(**defaults: int) -> dict[str, Any]:
    return {name: ["INT", {"default": value}] for name, value in defaults.items()}


def save_prefix(default: str = "ComfyUI") -> list[Any]:
    return ["STRING", {"default": default}]


OBJECT_INFO: dict[str, Any] = {
    "LoadImage": node_def({"image": [["example.png", "photo.png"], {"image_upload": True}]}, display_name="Load Image"),
    "KSampler": node_def({
        "model": ["MODEL"], "seed": ["INT", {"default": 0, "control_after_generate": True}], **ints(steps=20),
        "cfg": ["FLOAT", {"default": 8.0}], "sampler_name": [["euler", "dpmpp_2m"]],
        "scheduler": [["simple", "karras"]], "positive": ["CONDITIONING"], "negative": ["CONDITIONING"],
        "latent_image": ["LATENT"], "denoise": ["FLOAT", {"default": 1.0}]}),
    "EmptyImage": node_def(ints(width=512, height=512, batch_size=1, color=0)),
    "PrimitiveInt": node_def({"value": ["INT", {"control_after_generate": True}]}),  # a non-seed INT with control
    "ImageInvert": node_def({"image": ["IMAGE"]}),
    "SaveVideo": node_def({"video": ["VIDEO", {}], "filename_prefix": save_prefix("video/ComfyUI"),
                           "format": ["COMBO", {"default": "auto", "options": ["auto", "mp4"]}],
                           "codec": ["COMBO", {"default": "auto", "options": ["auto", "h264"]}]}),
    "SaveAnimatedWEBP": node_def({"images": ["IMAGE"], "filename_prefix": save_prefix(),
                                  "fps": ["FLOAT", {"default": 6.0}], "lossless": ["BOOLEAN", {"default": True}],
                                  **ints(quality=80), "method": [["default", "fastest", "slowest"]]}),
    "SaveImage": node_def({"images": ["IMAGE"], "filename_prefix": save_prefix()}),
    "ForcedText": node_def({"text": ["STRING", {"forceInput": True}], **ints(count=1)},
                           {"label": ["STRING", {"default": "x"}]}),
    "MultiPick": node_def({"tags": ["COMBO", {"options": ["a", "b", "c"], "multiselect": True}]}),
    "SeededCombo": node_def({"choice": ["COMBO", {"options": ["a", "b"], "control_after_generate": True}],
                             **ints(after=3)}),
}


def sample_workflow() -> dict[str, Any]:
    workflow: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return workflow


def ui_node(node_id: int, kind: str, widgets: Any = None, **fields: Any) -> dict[str, Any]:
    node = {"id": node_id, "type": kind, "mode": 0, "inputs": [], "outputs": [], **fields}
    if widgets is not None:
        node["widgets_values"] = widgets
    return node


def test_sample_converts_as_the_frontend_queues_it() -> None:
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


def test_legacy_and_short_widget_values() -> None:
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


def test_frontend_primitive_is_inlined_and_lists_are_wrapped() -> None:
    wf = sample_workflow()
    # the legacy frontend-only PrimitiveNode: its value is inlined into the target input
    wf["nodes"][4] = ui_node(5, "PrimitiveNode", [33, "increment"],
                             outputs=[{"name": "INT", "type": "INT", "widget": {"name": "width"}, "links": [4]}])
    wf["nodes"].append(ui_node(11, "MultiPick", [["a", "b"]]))  # list values are wrapped, else read as links
    prompt = workflow_to_api(wf, OBJECT_INFO)
    assert "5" not in prompt
    assert prompt["6"]["inputs"]["width"] == 33
    assert prompt["11"]["inputs"] == {"tags": {"__value__": ["a", "b"]}}


def test_muted_source_and_bypass_without_a_matching_input() -> None:
    wf = sample_workflow()
    wf["nodes"][5]["mode"] = 2  # mute EmptyImage: SaveImage 7 loses its images input, as in the frontend
    prompt = workflow_to_api(wf, OBJECT_INFO)
    assert "6" not in prompt and prompt["7"]["inputs"] == {"filename_prefix": "harness/ui_empty"}

    wf = sample_workflow()
    wf["nodes"][0]["mode"] = 4  # bypass LoadImage: it has no IMAGE input to pass through
    assert "images" not in workflow_to_api(wf, OBJECT_INFO)["4"]["inputs"]
    with pytest.raises(WorkflowConversionError, match=r"node 1 \(LoadImage\) is bypassed"):
        workflow_to_api(wf, OBJECT_INFO, strict_bypass=True)


def test_schema_1_links_as_objects() -> None:
    wf = sample_workflow()
    keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    wf["links"] = [dict(zip(keys, link)) for link in wf["links"]]
    assert workflow_to_api(wf, OBJECT_INFO) == workflow_to_api(sample_workflow(), OBJECT_INFO)


@pytest.mark.parametrize(("change", "message"), [
    (lambda wf: wf["nodes"].append(ui_node(11, "GIDDoesNotExist", [1])),
     r"node 11 \(GIDDoesNotExist\).*unknown to this ComfyUI"),
    (lambda wf: wf["nodes"][9].update(widgets_values=[123, 30, 6.5, "dpmpp_2m", "karras", 0.75]),  # no control value
     "node 10 .*control_after_generate"),
    (lambda wf: wf["nodes"][5].update(widgets_values=[512, "tall", 1, 0]), "'height' expects INT"),
    (lambda wf: wf["nodes"][6]["inputs"][0].update(link=99), "link 99, which is not in the workflow's links"),
    (lambda wf: (wf.update(definitions={"subgraphs": [{"id": "5f1c3c5e", "nodes": []}]}),
                 wf["nodes"].append(ui_node(12, "5f1c3c5e"))), "subgraph"),
])
def test_unconvertible_workflows_say_which_node_and_why(change: Any, message: str) -> None:
    wf = sample_workflow()
    change(wf)
    with pytest.raises(WorkflowConversionError, match=message):
        workflow_to_api(wf, OBJECT_INFO)


def test_api_format_is_not_a_ui_workflow() -> None:
    with pytest.raises(WorkflowConversionError, match="not a UI-format workflow"):
        workflow_to_api({"1": {"class_type": "SaveImage", "inputs": {}}}, OBJECT_INFO)
