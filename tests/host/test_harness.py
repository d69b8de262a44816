"""The host client (scripts/comfy_host) against the real server: what tests and the demo rely on it to report.

Only core nodes and the probe node (tests/host/probe_nodes) run here, so these tests stay meaningful while the
pack changes; what ComfyUI itself does (encoders, its own node set) is ComfyUI's to test. The client's parts that
need no server are unit-tested in tests/tooling.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from comfy_host import ComfyHost, PromptFailed, PromptRejected, run_workflow
from PIL import Image

SAMPLE_UI_WORKFLOW = Path(__file__).resolve().parents[1] / "tooling" / "sample_ui_workflow.json"


def empty_image(width: int, height: int, batch: int = 1, color: int = 0) -> dict[str, Any]:
    return {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": batch,
                                                  "color": color}}


def save_image(prefix: str, source: str = "1") -> dict[str, Any]:
    return {"class_type": "SaveImage", "inputs": {"images": [source, 0], "filename_prefix": prefix}}


def test_host_is_the_pinned_comfyui_with_the_probe_linked_in(comfy_host: ComfyHost) -> None:
    assert comfy_host.system_stats()["system"]["comfyui_version"] == "0.3.75"
    assert "GIDHarnessProgress" in comfy_host.object_info()  # extra_custom_nodes reach the server


def test_rejected_prompt_carries_the_servers_errors_and_the_next_prompt_runs(comfy_host: ComfyHost) -> None:
    with pytest.raises(PromptRejected) as rejected:
        comfy_host.queue({"1": {"class_type": "NoSuchNode_GIDHarness", "inputs": {}}})
    assert rejected.value.status == 400 and rejected.value.error["type"] == "invalid_prompt"
    assert "NoSuchNode_GIDHarness" in str(rejected.value)

    missing_input = {"1": empty_image(8, 8), "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "h/x"}}}
    with pytest.raises(PromptRejected) as bad_input:
        comfy_host.queue(missing_input)
    assert "2" in bad_input.value.node_errors and "images" in str(bad_input.value)

    entry = comfy_host.run({"1": empty_image(16, 16), "2": save_image("harness/after")})
    assert [f["node_id"] for f in comfy_host.output_files(entry)] == ["2"]


def test_execution_error_raises_prompt_failed_with_the_nodes_traceback(comfy_host: ComfyHost) -> None:
    mark = comfy_host.log_size()
    prompt = {"1": empty_image(8, 8), "2": save_image("../../escape")}
    with pytest.raises(PromptFailed) as failed:
        comfy_host.run(prompt, timeout=60)
    err = failed.value.execution_error
    assert err is not None and err["node_id"] == "2" and err["node_type"] == "SaveImage"
    assert "outside the output folder" in str(failed.value)
    assert any("outside the output folder" in tb for tb in comfy_host.tracebacks(since=mark))
    # check=False hands back the entry instead of raising
    entry = comfy_host.run({**prompt, "1": empty_image(9, 9)}, timeout=60, check=False)
    assert entry["status"]["status_str"] == "error"


def test_websocket_reports_progress_and_finish(comfy_host: ComfyHost) -> None:
    prompt = {
        "1": empty_image(8, 8, batch=2),
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


def test_run_workflow_converts_stages_edits_and_downloads(comfy_host: ComfyHost, tmp_path: Path) -> None:
    """What `comfy_host run-workflow` (the demo) does once its host is up, on a UI workflow with a bypassed node,
    a Reroute, a muted node, a Note and a widget converted to an input, against the real object_info."""
    workflow = json.loads(SAMPLE_UI_WORKFLOW.read_text(encoding="utf-8"))
    picture = tmp_path / "harness_in.png"
    Image.new("RGB", (20, 10), (1, 2, 250)).save(picture)
    out = tmp_path / "out"
    written = run_workflow(comfy_host, workflow, out, input_image=picture, timeout=120,
                           assignments=["6.height=12", "4.filename_prefix=cli/anim"])
    assert sorted(p.relative_to(out).parts[0] for p in written) == ["cli", "harness"]  # subfolders kept
    anim = next(p for p in written if p.suffix == ".webp")
    with Image.open(anim) as im:  # not inverted: the bypassed ImageInvert was routed around
        assert im.size == (20, 10) and im.convert("RGB").getpixel((3, 3)) == (1, 2, 250)
    still = next(p for p in written if p.suffix == ".png")
    with Image.open(still) as im:
        assert im.size == (40, 12)  # width from PrimitiveInt through the converted input, height from --set
        assert json.loads(im.info["workflow"])["nodes"][0]["type"] == "LoadImage"  # the UI workflow is embedded

    workflow["nodes"][6]["widgets_values"] = ["../../escape"]
    with pytest.raises(PromptFailed, match="outside the output folder"):
        run_workflow(comfy_host, workflow, out, input_image=picture, timeout=120)
