"""The host client's UI->API conversion (scripts/comfy_host/workflow.py) against the real frontend (1.32.9).

The demo, the CLI and the host tests turn UI workflows into prompts without a browser; this checks that they queue
exactly what the Run button would: the frontend's own graphToPrompt on every shipped workflow and on the tooling
tests' sample (bypass, Reroute, mute, Note, a converted widget), compared with workflow_to_api on the same file.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comfy_host import ComfyHost, workflow_to_api

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json")) + [REPO / "tests" / "tooling" / "sample_ui_workflow.json"]


@pytest.fixture(scope="module")
def frontend(chromium_browser: Any, comfy_host: ComfyHost) -> Iterator[Any]:
    context = chromium_browser.new_context()
    page = context.new_page()
    page.goto(comfy_host.base_url)
    page.wait_for_function("() => window.comfyAPI?.app?.app?.graph && window.LiteGraph?.registered_node_types"
                           "?.GID_EditSpectrum && window.LiteGraph.registered_node_types.SaveImage", timeout=120_000)
    yield page
    context.close()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_converter_queues_what_the_frontend_queues(frontend: Any, comfy_host: ComfyHost, path: Path) -> None:
    workflow = json.loads(path.read_text(encoding="utf-8"))
    # A fresh id per load: the frontend opens each as its own tab instead of matching an open one.
    queued = frontend.evaluate("""async (workflow) => {
        const app = window.comfyAPI.app.app;
        await app.loadGraphData(workflow);
        return (await app.graphToPrompt()).output;
    }""", {**workflow, "id": str(uuid.uuid4())})
    assert workflow_to_api(workflow, comfy_host.object_info()) == queued
