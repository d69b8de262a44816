"""The motion brush on Predict Spectral Volume in the real frontend, in headless Chromium, under both node renderers:
paint a region that stays still, a region that moves and a direction stroke with the mouse on the picture; the
`motion_brush` value follows the strokes, the API-format prompt carries it, and the run's frames are still where it
was painted still, move where it was painted to move, and sway along the direction stroke. Eraser, undo, clear and
a saved workflow are checked on the value."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from test_web_extension import ARTIFACTS, RENDERERS, GIDPage, gid_page, load_workflow  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]

WORKFLOW = REPO / "workflows" / "animate_still.json"
PICTURE = "gid_browser_brush.png"
SIZE = (256, 144)
FRAMES = 12
# Strokes in fractions of the picture (x, y). Every region is painted twice, the second time the other way (later
# strokes paint over earlier ones), so each run is the other's reference whatever the prior itself would do there.
STILL_LATER = [(0.2, 0.3), (0.2, 0.7)]  # painted to move, then painted still
MOVES_LATER = [(0.45, 0.3), (0.45, 0.7)]  # painted still, then painted to move
FIRST = ({"tool": "moves", "path": STILL_LATER, "size": 0.1}, {"tool": "still", "path": MOVES_LATER, "size": 0.1},
         {"tool": "moves", "path": [(0.77, 0.45), (0.77, 0.55)], "size": 0.17})  # a moving dab that sways its own way
SECOND = ({"tool": "still", "path": STILL_LATER, "size": 0.1}, {"tool": "moves", "path": MOVES_LATER, "size": 0.1})
# Then a direction stroke across the dab's own sway: upright if it swayed sideways, else sideways.
UPRIGHT = {"tool": "direction", "path": [(0.77, 0.35), (0.77, 0.65)], "size": 0.1, "strength": 2.0}
SIDEWAYS = {"tool": "direction", "path": [(0.69, 0.5), (0.85, 0.5)], "size": 0.1, "strength": 2.0}
# For the eraser test
MOVES = {"tool": "moves", "path": [(0.55, 0.3), (0.55, 0.7)], "size": 0.12}
STILL = {"tool": "still", "path": [(0.3, 0.3), (0.3, 0.7)], "size": 0.12}

def brush(gid_page: GIDPage, node_id: int, script: str) -> Any:
    """Runs `script` (a function of the node's MotionBrush editor) in the page."""
    return gid_page.js(f"(id) => ({script})(window.comfyAPI.app.app.graph.getNodeById(id).gidMotionBrush)", node_id)


def editor_state(gid_page: GIDPage, node_id: int) -> dict[str, Any]:
    return brush(gid_page, node_id, """(e) => {
        const rect = e.canvas.getBoundingClientRect();
        return {...e.root.dataset, frame: e.frame(), cssWidth: e.canvas.clientWidth,
                box: {x: rect.x, y: rect.y, width: rect.width, height: rect.height},
                picture: e.picture ? [e.picture.naturalWidth, e.picture.naturalHeight] : null,
                value: e.brushWidget.value};
    }""")


def strokes_of(gid_page: GIDPage, node_id: int) -> list[dict[str, Any]]:
    value = editor_state(gid_page, node_id)["value"]
    return json.loads(value)["strokes"] if value else []


def load_graph(gid_page: GIDPage) -> tuple[int, int]:
    """The shipped workflow with a small picture and few frames; returns the ids of Predict Spectral Volume and of
    the SaveImage keeping the frames."""
    Image.open(REPO / "samples" / "dandelion.jpg").convert("RGB").resize(SIZE).save(gid_page.host.input_dir / PICTURE)
    load_workflow(gid_page, json.loads(WORKFLOW.read_text()))
    ids = gid_page.js("""(options) => {
        // The motion is the prior's and the brush's alone: without the shipped Edit Spectrum.
        const graph = window.comfyAPI.app.app.graph;
        const predict = gidTest.node('GID_PredictSpectralVolume');
        predict.connect(0, gidTest.node('GID_MotionTexture'), 0);
        graph.remove(gidTest.node('GID_EditSpectrum'));
        gidTest.setWidget('GID_PredictSpectralVolume', 'motion_brush', '');
        return [predict.id, gidTest.shrink(options)];
    }""", {"picture": PICTURE, "frames": FRAMES, "seed": 70 + list(RENDERERS).index(gid_page.renderer)})
    node_id = int(ids[0])
    gid_page.page.wait_for_function(
        "([id, w]) => window.comfyAPI.app.app.graph.getNodeById(id).gidMotionBrush.picture?.naturalWidth === w",
        arg=[node_id, SIZE[0]], timeout=15_000)
    return node_id, int(ids[1])


def page_point(state: dict[str, Any], at: tuple[float, float]) -> tuple[float, float]:
    """Page coordinates of a point of the picture (fractions), as the editor shows it."""
    frame, box = state["frame"], state["box"]
    scale = box["width"] / state["cssWidth"]  # the classic renderer draws DOM widgets scaled with the canvas
    return box["x"] + (frame["x"] + at[0] * frame["w"]) * scale, box["y"] + (frame["y"] + at[1] * frame["h"]) * scale


def click_control(gid_page: GIDPage, node_id: int, selector: str) -> None:
    """A real click on a button of the editor's toolbar."""
    index = gid_page.js("""([id, selector]) => {
        const root = window.comfyAPI.app.app.graph.getNodeById(id).gidMotionBrush.root;
        return [...document.querySelectorAll('.gid-motion-brush')].indexOf(root);
    }""", [node_id, selector])
    assert index >= 0, "the motion brush is not in the page"
    gid_page.page.locator(".gid-motion-brush").nth(index).locator(selector).click()


def set_slider(gid_page: GIDPage, node_id: int, control: str, value: float) -> None:
    index = gid_page.js("(id) => [...document.querySelectorAll('.gid-motion-brush')]"
                        ".indexOf(window.comfyAPI.app.app.graph.getNodeById(id).gidMotionBrush.root)", node_id)
    gid_page.page.locator(".gid-motion-brush").nth(index).locator(f"input[data-control='{control}']").fill(str(value))


def size_slider_value(radius: float) -> int:
    """The size slider's position for a radius (log scale from 0.005 to 0.5 over 0..100)."""
    return round(100 * np.log(radius / 0.005) / np.log(100))


def paint(gid_page: GIDPage, node_id: int, stroke: dict[str, Any], steps: int = 12) -> None:
    """Picks the tool, size and strength on the toolbar, then drags along the path with the mouse."""
    click_control(gid_page, node_id, f"button[data-tool='{stroke['tool']}']")
    if "size" in stroke:
        set_slider(gid_page, node_id, "size", size_slider_value(stroke["size"]))
    if "strength" in stroke:
        set_slider(gid_page, node_id, "strength", stroke["strength"])
    state = editor_state(gid_page, node_id)
    mouse = gid_page.page.mouse
    path = stroke["path"]
    mouse.move(*page_point(state, path[0]))
    mouse.down()
    for a, b in zip(path, path[1:]):
        for step in range(1, steps + 1):
            u = step / steps
            mouse.move(*page_point(state, (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)))
    mouse.up()


def assert_stroke(stroke: dict[str, Any], painted: dict[str, Any]) -> None:
    assert stroke["kind"] == painted["tool"], stroke
    points = np.array(stroke["points"])
    path = np.array(painted["path"])
    assert points[0] == pytest.approx(path[0], abs=0.01) and points[-1] == pytest.approx(path[-1], abs=0.01), stroke
    assert len(points) >= 3, stroke  # the path, not only its ends
    # the size slider's step is 1/100 of the log range: about 5% of the radius
    assert stroke["radius"] == pytest.approx(painted["size"], rel=0.05), stroke
    assert stroke["strength"] == pytest.approx(painted.get("strength", 1.0)), stroke


def saved_frames(host: Any, entry: dict[str, Any], save_id: int) -> list[np.ndarray]:
    files = [f for f in host.output_files(entry) if f["type"] == "output" and f["node_id"] == str(save_id)]
    assert len(files) == FRAMES, files
    return [np.asarray(Image.open(io.BytesIO(host.download(f))).convert("RGB"), dtype=np.float32) for f in files]


def near_path(path: list[tuple[float, float]], within_px: float) -> np.ndarray:
    """Pixels of the picture (centres) within `within_px` of the polyline through `path` (fractions)."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    best = np.full((h, w), np.inf)
    for (x0, y0), (x1, y1) in zip(path, path[1:]):
        a = np.array([x0 * w, y0 * h])
        d = np.array([(x1 - x0) * w, (y1 - y0) * h])
        t = np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / (d @ d), 0, 1)
        best = np.minimum(best, np.hypot(xx - a[0] - t * d[0], yy - a[1] - t * d[1]))
    return best < within_px


def core(stroke: dict[str, Any]) -> np.ndarray:
    """Where the stroke decides alone: inside its full-weight half radius, less a few pixels for the splat."""
    return near_path(stroke["path"], stroke["size"] * max(SIZE) / 2 - 3)


def dense_flow(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Optical flow [h, w, 2] in pixels (Farneback, as tests/host/test_dynamics_nodes.flow_at)."""
    grey = [cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in (before, after)]
    return cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, 0.5, 3, 9, 5, 5, 1.1, 0)


def region_motion(picture: np.ndarray, frames: list[np.ndarray], stroke: dict[str, Any]) -> dict[str, float]:
    """How the stroke's core moves from the picture over the frames: the largest mean change (8-bit levels), and of
    the optical flow vectors of all its pixels in all frames the RMS length (pixels) and main axis (degrees from
    the horizontal, 0..90: a sway has no sign)."""
    region = core(stroke)
    change = max(float(np.abs(f - picture)[region].mean()) for f in frames)
    vectors = np.concatenate([dense_flow(picture, f)[region] for f in frames]).astype(np.float64)
    covariance = vectors.T @ vectors / len(vectors)
    axis = np.linalg.eigh(covariance)[1][:, 1]
    return {"change": change, "rms_px": float(np.sqrt(np.trace(covariance))),
            "axis_deg": float(np.degrees(np.arctan2(abs(axis[1]), abs(axis[0]))))}


def paint_all(gid_page: GIDPage, node_id: int, strokes: tuple[dict[str, Any], ...]) -> None:
    """Paints the strokes with the mouse; checks the value and the API-format prompt (what the Run button and saved
    API files carry) hold them, after the ones there."""
    before = strokes_of(gid_page, node_id)
    for stroke in strokes:
        paint(gid_page, node_id, stroke)
    now = strokes_of(gid_page, node_id)
    assert now[:len(before)] == before and len(now) == len(before) + len(strokes), now
    for stroke, painted in zip(now[len(before):], strokes):
        assert_stroke(stroke, painted)
    assert json.loads(gid_page.js("(id) => gidTest.promptInputs(id)", node_id)["motion_brush"]) == {"strokes": now}


def test_painted_regions_are_still_move_and_sway_along_the_stroke(gid_page: GIDPage) -> None:
    node_id, save_id = load_graph(gid_page)
    gid_page.focus("GID_PredictSpectralVolume")
    state = editor_state(gid_page, node_id)
    assert state["hasPicture"] == "true" and state["picture"] == list(SIZE) and state["strokes"] == "0", state
    gid_page.shot("brush-01-picture")
    picture = np.asarray(Image.open(gid_page.host.input_dir / PICTURE).convert("RGB"), dtype=np.float32)

    paint_all(gid_page, node_id, FIRST)
    first = saved_frames(gid_page.host, gid_page.run(), save_id)
    gid_page.page.wait_for_function(
        "(id) => window.comfyAPI.app.app.graph.getNodeById(id).gidMotionBrush.root.dataset.hasMobility === 'true'",
        arg=node_id, timeout=15_000)
    gid_page.focus("GID_PredictSpectralVolume")
    dab = region_motion(picture, first, FIRST[2])
    direction = UPRIGHT if dab["axis_deg"] < 45 else SIDEWAYS
    target_deg = 90 if direction is UPRIGHT else 0

    paint_all(gid_page, node_id, (*SECOND, direction))
    gid_page.page.mouse.move(*page_point(editor_state(gid_page, node_id), (0.6, 0.5)))
    gid_page.shot("brush-02-painted")
    second = saved_frames(gid_page.host, gid_page.run(), save_id)
    report = {"still_later": [region_motion(picture, frames, SECOND[0]) for frames in (first, second)],
              "moves_later": [region_motion(picture, frames, SECOND[1]) for frames in (first, second)],
              "direction": [dab, region_motion(picture, second, direction)], "direction_target_deg": target_deg}
    (ARTIFACTS / f"motion_brush_{gid_page.renderer}.json").write_text(json.dumps(report, indent=1))
    print(f"\n[{gid_page.renderer}] " + json.dumps(report))
    still, moves, sway = report["still_later"], report["moves_later"], report["direction"]
    # Painted to move, then still: it moved, now not a level changes.
    assert still[0]["rms_px"] > 0.3 and still[1]["change"] < 0.05, still
    # Painted still, then to move: not a level changed, now it moves.
    assert moves[0]["change"] < 0.05 and moves[1]["rms_px"] > 0.3 and moves[1]["change"] > 2, moves
    # The direction stroke turns the dab's sway onto the stroke, across its own axis.
    assert sway[0]["rms_px"] > 0.3 and sway[1]["rms_px"] > 0.3, sway
    assert abs(sway[1]["axis_deg"] - target_deg) < 20 and abs(sway[0]["axis_deg"] - target_deg) >= 45, sway
    gid_page.focus("GID_PredictSpectralVolume")
    gid_page.shot("brush-03-after-run")
    click_control(gid_page, node_id, "button[data-action='mobility']")  # hide the mobility: the picture again
    gid_page.shot("brush-03-after-run-mobility-hidden")

    ours = [m for m in gid_page.console if m["type"] in ("error", "warning", "pageerror")
            and ("motion_brush" in m["url"] or "motion_brush" in m["text"] or "GID" in m["text"])]
    assert not ours, json.dumps(ours, indent=1)


def test_eraser_undo_clear_and_a_saved_workflow(gid_page: GIDPage) -> None:
    node_id, _ = load_graph(gid_page)
    gid_page.focus("GID_PredictSpectralVolume")
    long_moves = {"tool": "moves", "path": [(0.55, 0.05), (0.55, 0.95)], "size": 0.06}
    paint(gid_page, node_id, long_moves)
    paint(gid_page, node_id, STILL)
    two = strokes_of(gid_page, node_id)
    assert [s["kind"] for s in two] == ["moves", "still"]

    # The eraser cuts the moves stroke across its middle: two pieces, the still stroke untouched. It takes every
    # point whose solid core (half the stroke's radius) it touches: nothing is left at full weight under it.
    eraser = 0.04
    paint(gid_page, node_id, {"tool": "eraser", "path": [(0.45, 0.5), (0.65, 0.5)], "size": eraser})
    erased = strokes_of(gid_page, node_id)
    assert [s["kind"] for s in erased] == ["moves", "moves", "still"], erased
    assert erased[2] == two[1]
    top, bottom = (np.array(s["points"]) for s in erased[:2])
    gap = (eraser + two[0]["radius"] / 2) * SIZE[0] / SIZE[1]  # in fractions of the height
    assert top[:, 1].max() < 0.5 - gap * 0.95 and bottom[:, 1].min() > 0.5 + gap * 0.95, erased
    assert top[:, 1].max() > 0.5 - gap * 1.5 and bottom[:, 1].min() < 0.5 + gap * 1.5, erased
    gid_page.shot("brush-04-erased")

    click_control(gid_page, node_id, "button[data-action='undo']")
    assert strokes_of(gid_page, node_id) == two
    # Saved as the frontend saves it, the workflow carries the brush; loaded again, the editor shows it.
    saved = json.loads(gid_page.js("() => JSON.stringify(window.comfyAPI.app.app.graph.serialize())"))
    click_control(gid_page, node_id, "button[data-action='clear']")
    assert editor_state(gid_page, node_id)["value"] == ""
    assert editor_state(gid_page, node_id)["strokes"] == "0"
    load_workflow(gid_page, saved)
    gid_page.page.wait_for_function(
        "(id) => window.comfyAPI.app.app.graph.getNodeById(id).gidMotionBrush?.picture?.naturalWidth > 0",
        arg=node_id, timeout=15_000)
    state = editor_state(gid_page, node_id)
    assert state["strokes"] == "2" and json.loads(state["value"])["strokes"] == two, state
    gid_page.focus("GID_PredictSpectralVolume")
    gid_page.shot("brush-05-loaded")

    # A value being typed that does not parse is never painted over; clear is the way out of it (and undoable).
    typed = '{"strokes": ['
    gid_page.js("(text) => gidTest.setWidget('GID_PredictSpectralVolume', 'motion_brush', text)", typed)
    paint(gid_page, node_id, MOVES)
    state = editor_state(gid_page, node_id)
    assert state["value"] == typed and state["strokes"] == "invalid", state
    assert "not valid JSON" in brush(gid_page, node_id, "(e) => e.info.textContent")
    click_control(gid_page, node_id, "button[data-action='clear']")
    assert editor_state(gid_page, node_id)["strokes"] == "0"
    click_control(gid_page, node_id, "button[data-action='undo']")
    assert editor_state(gid_page, node_id)["value"] == typed
