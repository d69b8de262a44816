"""The pack's web extension in the real ComfyUI 0.3.75 frontend (1.32.9), in headless Chromium, under both node
renderers: the classic LiteGraph canvas and the Vue node renderer ("Nodes 2.0", setting Comfy.VueNodes.Enabled).

Each renderer gets one page (own browser context). The graph is the shipped workflow, whose Edit Spectrum sits
between Predict Spectral Volume and Motion Texture, shrunk to a 128x72 picture and 8 frames so that a run takes
seconds on two shared cores. Screenshots of every state land in tests/browser/artifacts/ (git-ignored).
"""
from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WORKFLOW = REPO / "workflows" / "animate_still.json"
HELPERS = Path(__file__).resolve().parent / "page_helpers.js"
TINY_PICTURE = "gid_browser_tiny.png"
FRAMES = 8
RENDERERS = {"litegraph": False, "vue": True}
PACK_SCRIPTS = "/extensions/comfyui-gid/"
PACK_JS = sorted(p.relative_to(REPO / "web").as_posix() for p in (REPO / "web").rglob("*.js"))
RUN_TIMEOUT_MS = 180_000


@dataclass
class GIDPage:
    page: Any
    renderer: str
    host: Any
    console: list[dict[str, Any]] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)

    def shot(self, name: str, element: Any = None) -> Path:
        path = ARTIFACTS / f"{self.renderer}-{name}.png"
        (element or self.page).screenshot(path=str(path))
        return path

    def js(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def run(self) -> dict[str, Any]:
        """Queues the graph as the Run button does (graphToPrompt: widget values as the user left them)."""
        before = self.js("() => gidTest.queue()")
        self.page.wait_for_function("(n) => gidTest.finished.length > n", arg=before, timeout=RUN_TIMEOUT_MS)
        result = self.js("(n) => gidTest.finished[n]", before)
        assert result["type"] == "execution_success", f"the run ended with {result}"
        entry = self.host.history(result["detail"]["prompt_id"])[result["detail"]["prompt_id"]]
        self.page.wait_for_timeout(500)  # executed events reach the nodes before the success event; let them draw
        return entry

    def focus(self, node_type: str, index: int = 0) -> None:
        """Scale 1, node near the top-left (in view: the Vue renderer mounts only nodes in the viewport)."""
        self.js("""([type, index]) => {
            const app = window.comfyAPI.app.app;
            const node = gidTest.nodes(type)[index];
            app.canvas.ds.scale = 1;
            app.canvas.ds.offset = [-node.pos[0] + 200, -node.pos[1] + 220];
            app.canvas.setDirty(true, true);
        }""", [node_type, index])
        self.page.wait_for_timeout(400)


def _post_settings(host: Any, settings: dict[str, Any]) -> None:
    request = urllib.request.Request(host.base_url + "/settings", data=json.dumps(settings).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


@pytest.fixture(scope="module", params=list(RENDERERS))
def gid_page(request: pytest.FixtureRequest, chromium_browser: Any, comfy_host: Any) -> Iterator[GIDPage]:
    renderer = request.param
    ARTIFACTS.mkdir(exist_ok=True)
    Image.open(REPO / "samples" / "dandelion.jpg").convert("RGB").resize((128, 72)).save(
        comfy_host.input_dir / TINY_PICTURE)
    # Settings live on the server (user/default/comfy.settings.json); the page reads them when it loads.
    _post_settings(comfy_host, {"Comfy.VueNodes.Enabled": RENDERERS[renderer], "Comfy.TutorialCompleted": True})
    # Own context per renderer: the frontend restores open workflow tabs from the browser's storage.
    context = chromium_browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    session = GIDPage(page, renderer, comfy_host)
    page.on("console", lambda m: session.console.append(
        {"type": m.type, "text": m.text, "url": (m.location or {}).get("url", "")}))
    page.on("response", lambda r: session.responses.append((r.url.split("?", 1)[0], r.status)))
    page.on("pageerror", lambda e: session.console.append({"type": "pageerror", "text": f"{e}\n{e.stack}", "url": ""}))
    page.goto(comfy_host.base_url)
    # Ready once the node definitions are registered (a graph loaded earlier finds every node type missing).
    page.wait_for_function("() => window.comfyAPI?.app?.app?.graph && window.LiteGraph?.registered_node_types"
                           "?.GID_EditSpectrum && window.LiteGraph.registered_node_types.SaveImage", timeout=120_000)
    page.wait_for_timeout(500)
    page.add_script_tag(path=str(HELPERS))
    page.wait_for_function("() => (window.comfyAPI.app.app.extensions || []).some(e => e.name === 'GID.NodeViews')",
                           timeout=30_000)
    assert session.js("() => window.LiteGraph.vueNodesMode") == RENDERERS[renderer]
    yield session
    context.close()


def load_workflow(gid_page: GIDPage, workflow: dict[str, Any]) -> None:
    # A fresh id per load: the frontend opens each as its own tab instead of matching an open one.
    gid_page.js("async (wf) => { await window.comfyAPI.app.app.loadGraphData(wf); }",
                {**workflow, "id": str(uuid.uuid4())})
    gid_page.page.wait_for_timeout(300)
    assert not gid_page.page.get_by_text("This workflow has missing nodes").is_visible()


def load_test_graph(gid_page: GIDPage) -> tuple[int, int]:
    """The shipped workflow made tiny; returns the ids of its Edit Spectrum and of the SaveImage keeping the frames.

    The seed differs per renderer: ComfyUI sends no `executed` event for nodes it takes from its cache, and both
    pages share one server.
    """
    load_workflow(gid_page, json.loads(WORKFLOW.read_text()))
    # The editor shapes the whole picture's spectrum from an empty edit (the shipped one is empty too; an
    # unplugged mask makes sure no region is left out).
    ids = gid_page.js("""(options) => {
        const edit = gidTest.node('GID_EditSpectrum');
        edit.disconnectInput(edit.findInputSlot('mask'));
        gidTest.setWidget('GID_EditSpectrum', 'edit', '{}');
        return [edit.id, gidTest.shrink(options)];
    }""", {"picture": TINY_PICTURE, "frames": FRAMES, "seed": list(RENDERERS).index(gid_page.renderer)})
    gid_page.page.wait_for_timeout(300)
    return int(ids[0]), int(ids[1])


def saved_motion(host: Any, entry: dict[str, Any], save_id: int) -> float:
    """Mean absolute change from the first frame over the saved PNG frames, in 8-bit levels."""
    files = [f for f in host.output_files(entry) if f["type"] == "output" and f["node_id"] == str(save_id)]
    assert len(files) == FRAMES, files
    frames = [np.asarray(Image.open(io.BytesIO(host.download(f))).convert("RGB"), dtype=np.float32) for f in files]
    return float(np.mean([np.abs(f - frames[0]).mean() for f in frames[1:]]))


def editor_state(gid_page: GIDPage, node_id: int) -> dict[str, Any]:
    # Through the node, not the document: the Vue renderer unmounts nodes outside the viewport.
    return gid_page.js("""(id) => {
        const editor = window.comfyAPI.app.app.graph.getNodeById(id).gidSpectrumEditor;
        const rect = editor.canvas.getBoundingClientRect();
        return {...editor.root.dataset, canvasWidth: editor.canvas.width, canvasHeight: editor.canvas.height,
                cssWidth: editor.canvas.clientWidth, box: {x: rect.x, y: rect.y, width: rect.width, height: rect.height},
                visible: !!(editor.root.offsetWidth || editor.root.offsetHeight)};
    }""", node_id)


def resize_by_mouse(gid_page: GIDPage, node_id: int, dx: float, dy: float) -> None:
    """Drags the node's bottom-right corner as a user does (a Vue node has its own resize handle element)."""
    if gid_page.renderer == "vue":
        box = gid_page.page.locator(f'[data-node-id="{node_id}"] .cursor-se-resize').first.bounding_box()
        assert box, "the Vue node shows no bottom-right resize handle"
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    else:
        x, y = gid_page.js("""(id) => {
            const canvas = window.comfyAPI.app.app.canvas;
            const node = canvas.graph.getNodeById(id);
            const [cx, cy] = canvas.ds.convertOffsetToCanvas([node.pos[0] + node.size[0], node.pos[1] + node.size[1]]);
            const rect = canvas.canvas.getBoundingClientRect();
            return [rect.left + cx - 4, rect.top + cy - 4];
        }""", node_id)
    mouse = gid_page.page.mouse
    mouse.move(x, y)
    mouse.down()
    for step in range(1, 6):
        mouse.move(x + dx * step / 5, y + dy * step / 5)
    mouse.up()
    gid_page.page.wait_for_timeout(500)


def test_shipped_workflow_opens(gid_page: GIDPage) -> None:
    workflow = json.loads(WORKFLOW.read_text())
    load_workflow(gid_page, workflow)
    gid_page.js("() => window.comfyAPI.app.app.extensionManager.command.execute('Comfy.Canvas.FitView')")
    gid_page.page.wait_for_timeout(500)
    types = gid_page.js("() => window.comfyAPI.app.app.graph._nodes.map(n => n.type)")
    assert sorted(types) == sorted(n["type"] for n in workflow["nodes"])
    # every node kind is known to the frontend (none drawn as a missing-node placeholder)
    assert gid_page.js("() => window.comfyAPI.app.app.graph._nodes.every(n => n.has_errors !== true "
                       "&& window.LiteGraph.registered_node_types[n.type])")
    gid_page.shot("01-shipped-workflow")


def test_spectrum_editor_drives_the_next_run_and_preview_plays(gid_page: GIDPage) -> None:
    edit_id, save_id = load_test_graph(gid_page)
    gid_page.focus("GID_EditSpectrum")
    before_run = editor_state(gid_page, edit_id)
    assert before_run["hasSpectrum"] == "false" and before_run["bands"] == "16"  # the paper's default until a run
    gid_page.shot("02-editor-before-run")

    first = gid_page.run()
    spectrum = first["outputs"][str(edit_id)]["gid_spectrum"][0]
    bands = len(spectrum["frequencies_hz"])
    state = editor_state(gid_page, edit_id)
    assert state["hasSpectrum"] == "true"
    assert int(state["bands"]) == bands == len(spectrum["energy_in"])
    gid_page.shot("03-editor-after-run")

    # Drag the strongest oscillating band (DC left out) to the top: gain 3.
    energy_in = spectrum["energy_in"]
    band = max(range(1, bands), key=lambda k: energy_in[k])
    box = state["box"]
    assert box["width"] > 100, box
    scale = box["width"] / state["cssWidth"]
    column = (state["cssWidth"] - 12) / bands  # the editor's plot: 6 px padding each side
    x = box["x"] + (6 + (band + 0.5) * column) * scale
    mouse = gid_page.page.mouse
    mouse.move(x, box["y"] + box["height"] * 0.6)
    mouse.down()
    for step in range(1, 6):
        mouse.move(x, box["y"] + box["height"] * 0.6 * (1 - step / 5) - 4)
    mouse.up()
    edit = json.loads(gid_page.js("(id) => gidTest.editValue(id)", edit_id))
    expected = [1.0] * bands
    expected[band] = 3.0
    assert edit["gains"] == expected, edit
    # the API-format prompt (what the Run button and saved API files carry) holds the same edit
    assert json.loads((gid_page.js("(id) => gidTest.promptInputs(id)", edit_id))["edit"]) == edit
    gid_page.shot("04-editor-after-drag")

    second = gid_page.run()
    after = second["outputs"][str(edit_id)]["gid_spectrum"][0]
    # Only the dragged band changes, by its gain (energy is amplitude). Band 0, the static offset, is left out:
    # Edit Spectrum corrects it to keep every pixel where it was at frame 0.
    changed = [k for k in range(1, bands)
               if abs(after["energy_out"][k] - spectrum["energy_out"][k]) > 1e-4 * spectrum["energy_out"][k]]
    assert changed == [band], f"bands whose output energy changed: {changed}, dragged: {band}; before: {spectrum}, after: {after}"
    assert after["energy_out"][band] == pytest.approx(3 * spectrum["energy_out"][band], rel=1e-3)
    assert after["total_amplitude_px"] > spectrum["total_amplitude_px"]
    motion_before, motion_after = saved_motion(gid_page.host, first, save_id), saved_motion(gid_page.host, second, save_id)
    assert motion_after > motion_before * 1.05, (motion_before, motion_after)
    gid_page.shot("05-editor-second-run")

    # Loop previews on both render nodes.
    for node_type in ("GID_SoftmaxSplatRender", "GID_LoopVideo"):
        gid_page.focus(node_type)
        assert_preview_plays(gid_page, node_type)

    # Motion overlays on Predict Spectral Volume and Edit Spectrum.
    # (The Vue renderer unmounts nodes outside the viewport, so ask the nodes' widgets, not the document.)
    overlays_script = """() => Object.fromEntries(['GID_PredictSpectralVolume', 'GID_EditSpectrum'].map(type => {
        const widget = gidTest.widget(gidTest.node(type), 'gid_motion_overlay');
        const img = widget?.element.querySelector('img');
        return [type, img ? (img.complete ? img.naturalWidth : 'loading') : 'no overlay widget'];
    }))"""
    deadline = time.monotonic() + 15
    overlays = gid_page.js(overlays_script)
    while not all(isinstance(width, int) and width > 0 for width in overlays.values()):
        assert time.monotonic() < deadline, f"motion overlay picture width per node: {overlays}"
        gid_page.page.wait_for_timeout(200)
        overlays = gid_page.js(overlays_script)
    gid_page.focus("GID_PredictSpectralVolume")
    gid_page.shot("06-motion-overlay")


def assert_preview_plays(gid_page: GIDPage, node_type: str) -> None:
    index = gid_page.js("""(type) => {
        const boxes = [...document.querySelectorAll('.gid-loop-preview')];
        const node = gidTest.node(type);
        const widget = node.widgets.find(w => w.name === 'gid_loop_preview');
        return boxes.indexOf(widget.element);
    }""", node_type)
    assert index >= 0, f"{node_type} shows no loop preview"
    preview = gid_page.page.locator(".gid-loop-preview").nth(index)
    img = preview.locator("img")
    gid_page.page.wait_for_function("(i) => { const img = document.querySelectorAll('.gid-loop-preview img')[i];"
                                    " return img.complete && img.naturalWidth > 0; }", arg=index, timeout=30_000)
    track = gid_page.js("""async (i) => {
        const img = document.querySelectorAll('.gid-loop-preview img')[i];
        const decoder = new ImageDecoder({data: (await fetch(img.src)).body, type: 'image/webp'});
        await decoder.tracks.ready;
        const t = decoder.tracks.selectedTrack;
        return {animated: t.animated, frames: t.frameCount};
    }""", index)
    assert track["animated"] and track["frames"] == FRAMES, track
    caption = preview.inner_text()
    assert f"{FRAMES} frames" in caption and "fps" in caption, caption
    # Playing: what the page shows of the picture changes over time.
    seen = set()
    for _ in range(8):
        seen.add(img.screenshot())
        gid_page.page.wait_for_timeout(60)
    assert len(seen) >= 2, f"{node_type}: the preview shows the same picture for 0.5 s"
    gid_page.shot(f"06-preview-{node_type}", preview)


def test_collapse_resize_copy_and_a_workflow_saved_before_the_run(gid_page: GIDPage) -> None:
    edit_id, _ = load_test_graph(gid_page)
    other_keys = {"rotate_deg": 15, "feather_px": 4}  # keys the editor does not edit
    gains = [1, 0.5] + [1] * 14
    gid_page.js("([id, text]) => { const w = gidTest.widget(window.comfyAPI.app.app.graph.getNodeById(id), 'edit');"
                " w.value = text; w.callback?.(text); }", [edit_id, json.dumps({**other_keys, "gains": gains})])
    # Saved as the frontend saves it: JSON text (keys left undefined in the graph are absent, not null).
    saved_before_run = json.loads(gid_page.js("() => JSON.stringify(window.comfyAPI.app.app.graph.serialize())"))
    gid_page.run()
    gid_page.focus("GID_EditSpectrum")

    # A preset rewrites gains and magnify and keeps every other key of the edit.
    gid_page.js("(id) => window.comfyAPI.app.app.graph.getNodeById(id).gidSpectrumEditor.root"
                ".querySelector(\"button[data-preset='low bands only']\").click()", edit_id)
    edit = json.loads(gid_page.js("(id) => gidTest.editValue(id)", edit_id))
    assert {k: v for k, v in edit.items() if k not in ("gains", "magnify")} == other_keys
    assert edit["magnify"] == 1 and edit["gains"] == [1 if f <= 1.0 else 0 for f in np.arange(16) * 0.2]

    gid_page.js("(id) => window.comfyAPI.app.app.graph.getNodeById(id).collapse()", edit_id)
    gid_page.page.wait_for_timeout(300)
    assert not editor_state(gid_page, edit_id)["visible"]
    gid_page.shot("07-collapsed")
    gid_page.js("(id) => window.comfyAPI.app.app.graph.getNodeById(id).collapse()", edit_id)
    gid_page.page.wait_for_timeout(300)
    width_before = editor_state(gid_page, edit_id)["canvasWidth"]
    resize_by_mouse(gid_page, edit_id, 200, 80)
    resized = editor_state(gid_page, edit_id)
    assert resized["visible"] and resized["canvasWidth"] > width_before and resized["bands"] == "16", resized
    gid_page.shot("08-resized")

    # Copy and paste: the copy carries the edit (its editor draws it) but not the last run's spectrum.
    copy_id = gid_page.js("(id) => { const app = window.comfyAPI.app.app; const n = app.graph.getNodeById(id);"
                          " app.canvas.copyToClipboard([n]); app.canvas.pasteFromClipboard();"
                          " return gidTest.nodes('GID_EditSpectrum').find(m => m.id !== id).id; }", edit_id)
    gid_page.page.wait_for_timeout(500)
    assert gid_page.js("(id) => gidTest.editValue(id)", copy_id) == \
        gid_page.js("(id) => gidTest.editValue(id)", edit_id)
    copied = editor_state(gid_page, copy_id)
    assert json.loads(copied["gains"]) == edit["gains"] and copied["hasSpectrum"] == "false", copied
    gid_page.shot("09-copied")

    # The workflow saved before the run: its editor shows the saved gains and no spectrum yet.
    load_workflow(gid_page, saved_before_run)
    state = editor_state(gid_page, edit_id)
    assert state["hasSpectrum"] == "false" and json.loads(state["gains"]) == gains, state
    gid_page.focus("GID_EditSpectrum")
    gid_page.shot("10-loaded-saved-before-run")


def test_no_console_errors_or_warnings_from_the_pack(gid_page: GIDPage) -> None:
    # Runs last for each renderer: covers the page load and everything the tests above did.
    ours = [m for m in gid_page.console
            if m["type"] in ("error", "warning", "pageerror")
            and (PACK_SCRIPTS in m["url"] or PACK_SCRIPTS in m["text"] or "GID" in m["text"])]
    assert not ours, json.dumps(ours, indent=1)
    scripts = {url.split(PACK_SCRIPTS, 1)[1]: status for url, status in gid_page.responses if PACK_SCRIPTS in url}
    assert {name: scripts.get(name) for name in PACK_JS} == {name: 200 for name in PACK_JS}, scripts


def test_render_loop_file_plays_its_file_and_shows_the_wrap_report(gid_page: GIDPage) -> None:
    """The long-loop workflow, shrunk: its MP4 plays on the node (both renderers) and the wrap report is shown."""
    load_workflow(gid_page, json.loads((REPO / "workflows" / "long_loop_to_file.json").read_text()))
    gid_page.js("""(seed) => {
        gidTest.setWidget('LoadImage', 'image', 'gid_browser_tiny.png');
        gidTest.setWidget('GID_MotionTexture', 'frames', 8);
        gidTest.setWidget('GID_PredictSpectralVolume', 'seed', seed);
    }""", 50 + list(RENDERERS).index(gid_page.renderer))  # own seed per page: cached nodes send no `executed`
    entry = gid_page.run()
    node_id = gid_page.js("() => gidTest.node('GID_RenderLoopFile').id")
    shown = entry["outputs"][str(node_id)]["images"][0]
    assert shown["filename"].endswith(".mp4")
    gid_page.focus("GID_RenderLoopFile")
    report = gid_page.js("(id) => window.comfyAPI.app.app.graph.getNodeById(id).gidReportElement?.textContent",
                         node_id)
    assert report.startswith("loop: 8 frames x 1 | wrap step / median step: "), report
    assert 0.5 < float(report.rsplit(":", 1)[1]) < 1.5, report
    # The file itself, decoded and playing in the page's <video> (not a broken-picture placeholder).
    gid_page.page.wait_for_function("(name) => [...document.querySelectorAll('video')].some(v => "
                                    "(v.currentSrc || v.src).includes(name) && v.readyState >= 2)",
                                    arg=shown["filename"], timeout=30_000)
    played = gid_page.js("""async (name) => {
        const video = [...document.querySelectorAll('video')].find(v => (v.currentSrc || v.src).includes(name));
        video.muted = true;
        await video.play();
        const start = video.currentTime;
        await new Promise(r => setTimeout(r, 400));
        return {width: video.videoWidth, height: video.videoHeight, start, now: video.currentTime,
                loop: video.loop, duration: video.duration};
    }""", shown["filename"])
    assert (played["width"], played["height"]) == (128, 72), played
    assert played["now"] != played["start"], f"the video does not play: {played}"
    assert not gid_page.page.get_by_text("Image failed to load").is_visible()
    gid_page.shot("07-render-loop-file")

    # An animated WebP from the same node is a picture again (canvas image or, in Vue, an <img>), not a video.
    gid_page.js("() => gidTest.setWidget('GID_RenderLoopFile', 'format', 'webp')")
    entry = gid_page.run()
    shown = entry["outputs"][str(node_id)]["images"][0]
    assert shown["filename"].endswith(".webp")
    gid_page.focus("GID_RenderLoopFile")
    gid_page.page.wait_for_function("""([id, name]) => {
        const node = window.comfyAPI.app.app.graph.getNodeById(id);
        const pictures = [...(node.imgs || []), ...document.querySelectorAll('img')];
        return pictures.some(i => i.src.includes(name) && i.complete && i.naturalWidth === 128);
    }""", arg=[node_id, shown["filename"]], timeout=30_000)
    assert not gid_page.js("(name) => [...document.querySelectorAll('video')].some(v => "
                           "(v.currentSrc || v.src).includes(name))", shown["filename"])
    gid_page.shot("08-render-loop-file-webp")
