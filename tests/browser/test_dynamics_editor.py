"""The pull editor on Interactive Dynamics in the real frontend, in headless Chromium, under both node renderers:
run once, drag on the picture, the actions JSON follows the drag, the live preview plays (its frame rate at 256 px
is measured with requestAnimationFrame and saved to artifacts/dynamics_preview.json), and the next run's frames
move where and how the user pulled."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from test_web_extension import ARTIFACTS, RENDERERS, GIDPage, gid_page, load_workflow  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "host"))
from test_dynamics_nodes import assert_moved_as_pulled, flow_at  # noqa: E402

WORKFLOW = REPO / "workflows" / "interactive_dynamics.json"
PICTURE = "gid_browser_dynamics.png"
SIZE = (256, 144)  # the preview's own long side: its frame rate is measured at 256 px
FRAMES = 12
START = (0.15, 0.6)  # grass left of the big dandelion, the shipped workflow's point (the head itself stays still)
DRAG = 0.06  # of the picture's width, to the right
MIN_PREVIEW_FPS = 30


def editor_state(gid_page: GIDPage, node_id: int) -> dict[str, Any]:
    return gid_page.js("""(id) => {
        const e = window.comfyAPI.app.app.graph.getNodeById(id).gidDynamicsEditor;
        const rect = e.canvas.getBoundingClientRect();
        return {...e.root.dataset, frame: e.frame(), cssWidth: e.canvas.clientWidth,
                box: {x: rect.x, y: rect.y, width: rect.width, height: rect.height},
                warp: [e.warp.width, e.warp.height], actions: e.actionsWidget.value};
    }""", node_id)


def load_graph(gid_page: GIDPage) -> tuple[int, int]:
    Image.open(REPO / "samples" / "dandelion.jpg").convert("RGB").resize(SIZE).save(gid_page.host.input_dir / PICTURE)
    load_workflow(gid_page, json.loads(WORKFLOW.read_text()))
    ids = gid_page.js("""(o) => {
        const app = window.comfyAPI.app.app;
        gidTest.setWidget('LoadImage', 'image', o.picture);
        gidTest.setWidget('GID_PredictSpectralVolume', 'seed', o.seed);
        gidTest.setWidget('GID_InteractiveDynamics', 'frames', o.frames);
        gidTest.setWidget('GID_InteractiveDynamics', 'fps', 12);
        gidTest.setWidget('GID_InteractiveDynamics', 'damping', 0.3);
        gidTest.setWidget('GID_InteractiveDynamics', 'actions', '[]');
        gidTest.node('GID_SaveLoop').mode = 2;  // PNG frames instead: lossless, no big preview on the canvas
        const render = gidTest.node('GID_SoftmaxSplatRender');
        const save = window.LiteGraph.createNode('SaveImage');
        save.pos = [render.pos[0], render.pos[1] + 650];
        app.graph.add(save);
        render.connect(0, save, 0);
        gidTest.widget(save, 'filename_prefix').value = 'gid_browser/dynamics';
        return [gidTest.node('GID_InteractiveDynamics').id, save.id];
    }""", {"picture": PICTURE, "frames": FRAMES, "seed": 20 + list(RENDERERS).index(gid_page.renderer)})
    gid_page.page.wait_for_timeout(300)
    return int(ids[0]), int(ids[1])


def saved_frames(host: Any, entry: dict[str, Any], save_id: int) -> list[np.ndarray]:
    files = [f for f in host.output_files(entry) if f["type"] == "output" and f["node_id"] == str(save_id)]
    assert len(files) == FRAMES, files
    return [np.asarray(Image.open(io.BytesIO(host.download(f))).convert("RGB"), dtype=np.float32) for f in files]


def test_drag_writes_the_pull_previews_it_live_and_the_run_moves_there(gid_page: GIDPage) -> None:
    node_id, save_id = load_graph(gid_page)
    gid_page.focus("GID_InteractiveDynamics")
    assert editor_state(gid_page, node_id).get("hasBasis") != "true"
    gid_page.shot("dynamics-01-before-run")

    first = gid_page.run()
    payload = first["outputs"][str(node_id)]["gid_dynamics"][0]
    assert (payload["width"], payload["height"]) == SIZE
    gid_page.page.wait_for_function("(id) => window.comfyAPI.app.app.graph.getNodeById(id).gidDynamicsEditor"
                                    ".root.dataset.hasBasis === 'true'", arg=node_id, timeout=30_000)
    gid_page.focus("GID_InteractiveDynamics")
    state = editor_state(gid_page, node_id)
    assert state["warp"] == list(SIZE), state
    gid_page.shot("dynamics-02-after-run")

    # Drag from START to the right, as a user does, and let go.
    frame, box = state["frame"], state["box"]
    scale = box["width"] / state["cssWidth"]
    x0 = box["x"] + (frame["x"] + START[0] * frame["w"]) * scale
    y0 = box["y"] + (frame["y"] + START[1] * frame["h"]) * scale
    dx = DRAG * frame["w"] * scale
    mouse = gid_page.page.mouse
    mouse.move(x0, y0)
    mouse.down()
    for step in range(1, 7):
        mouse.move(x0 + dx * step / 6, y0)
    gid_page.shot("dynamics-03-while-pulling")
    mouse.up()

    actions = json.loads(editor_state(gid_page, node_id)["actions"])
    assert len(actions) == 1 and actions[0]["type"] == "pull", actions
    assert actions[0]["at"] == pytest.approx(list(START), abs=0.01)
    assert actions[0]["pull"][0] == pytest.approx(DRAG * SIZE[0], rel=0.1) and abs(actions[0]["pull"][1]) < 1
    # the API-format prompt (what the Run button and saved API files carry) holds the same actions
    assert json.loads(gid_page.js("(id) => gidTest.promptInputs(id)", node_id)["actions"]) == actions

    # The preview's own simulation puts the point where it was dragged, from its 16 modes at 64 px.
    released = gid_page.js("""async (id) => {
        const model = await import('/extensions/comfyui-gid/js/dynamics_model.js');
        const e = window.comfyAPI.app.app.graph.getNodeById(id).gidDynamicsEditor;
        const actions = JSON.parse(e.actionsWidget.value);
        const x = e.coordinatesAt(0, actions, e.constants())[0].x;  // the pulled object's coordinates
        const [px, py] = model.sampleModes(e.basis, actions[0].at[0], actions[0].at[1]);
        return [px.reduce((s, v, m) => s + v * x[m], 0), py.reduce((s, v, m) => s + v * x[m], 0)];
    }""", node_id)
    assert released == pytest.approx(actions[0]["pull"], rel=0.2, abs=0.2 * abs(actions[0]["pull"][0])), released

    # The live preview plays at once, before any run: measure its frame rate over two seconds.
    shots = set()
    for _ in range(6):
        shots.add(gid_page.js("(id) => window.comfyAPI.app.app.graph.getNodeById(id).gidDynamicsEditor"
                              ".canvas.toDataURL()", node_id))
        gid_page.page.wait_for_timeout(120)
    assert len(shots) >= 3, "the live preview does not move"
    # The frame rate the page shows (requestAnimationFrame), over fresh two-second windows without the snapshots
    # above; the best of three, since this machine is shared (the cost of our own work per frame is reported too).
    windows = []
    for _ in range(3):
        gid_page.js("(id) => { const s = window.comfyAPI.app.app.graph.getNodeById(id).gidDynamicsEditor.stats;"
                    " s.rafFrames = 0; s.tickMs = 0; s.rafStart = performance.now(); }", node_id)
        gid_page.page.wait_for_timeout(2000)
        windows.append(gid_page.js("""(id) => {
            const s = window.comfyAPI.app.app.graph.getNodeById(id).gidDynamicsEditor.stats;
            return {fps: s.rafFrames / ((performance.now() - s.rafStart) / 1000), tick_ms: s.tickMs / s.rafFrames};
        }""", node_id))
        if windows[-1]["fps"] >= MIN_PREVIEW_FPS:
            break
    stats = gid_page.js("""(id) => {
        const e = window.comfyAPI.app.app.graph.getNodeById(id).gidDynamicsEditor;
        const terms = e.coordinatesAt(0.2, JSON.parse(e.actionsWidget.value), e.constants());
        const t0 = performance.now();
        for (let i = 0; i < 60; i++) e.renderWarp(terms);
        return {warp_ms: (performance.now() - t0) / 60, size: [e.warp.width, e.warp.height], modes: e.basis.modes};
    }""", node_id)
    best = max(windows, key=lambda w: w["fps"])
    stats.update(renderer=gid_page.renderer, preview_fps=best["fps"], frame_work_ms=best["tick_ms"], windows=windows)
    (ARTIFACTS / f"dynamics_preview_{gid_page.renderer}.json").write_text(json.dumps(stats, indent=1))
    print(f"\n[{gid_page.renderer}] live preview at {stats['size']}: {stats['preview_fps']:.1f} fps "
          f"(requestAnimationFrame), {stats['frame_work_ms']:.2f} ms of work per frame, warp {stats['warp_ms']:.2f} ms")
    assert stats["size"] == list(SIZE) and stats["preview_fps"] >= MIN_PREVIEW_FPS, stats
    assert stats["frame_work_ms"] < 1000 / MIN_PREVIEW_FPS, stats
    gid_page.shot("dynamics-04-preview-playing")

    # The run carries the drag: its frames start pulled to the right at that point and ring down.
    second = gid_page.run()
    frames = saved_frames(gid_page.host, second, save_id)
    picture = np.asarray(Image.open(gid_page.host.input_dir / PICTURE).convert("RGB"), dtype=np.float32)
    assert_moved_as_pulled(flow_at(picture, frames[0], START), actions[0]["pull"])
    change = [float(np.abs(f - picture).mean()) for f in frames]
    assert change[0] > 0.2 and change[-1] < change[0], change
    untouched = saved_frames(gid_page.host, first, save_id)
    assert max(float(np.abs(f - picture).max()) for f in untouched) == 0  # no action: the picture itself
    # Alt+drag flicks instead (an impulse at the drag's length per quarter second); shift adds it to the pull.
    gid_page.focus("GID_InteractiveDynamics")
    keys = gid_page.page.keyboard
    mouse.move(x0, y0)
    keys.down("Shift")
    keys.down("Alt")
    mouse.down()
    for step in range(1, 7):
        mouse.move(x0, y0 - dx * step / 6)
    mouse.up()
    keys.up("Alt")
    keys.up("Shift")
    both = json.loads(editor_state(gid_page, node_id)["actions"])
    assert [a["type"] for a in both] == ["pull", "impulse"] and both[0] == actions[0], both
    assert both[1]["velocity"][1] == pytest.approx(-4 * DRAG * SIZE[0], rel=0.1) and abs(both[1]["velocity"][0]) < 4

    ours = [m for m in gid_page.console if m["type"] in ("error", "warning", "pageerror")
            and ("dynamics_editor" in m["url"] or "dynamics_editor" in m["text"] or "GID" in m["text"])]
    assert not ours, json.dumps(ours, indent=1)
