"""Every GID node's help page in the real frontend (1.32.9): select the node, press the selection toolbox's info
button (what a user does), and the node library's help panel shows web/docs/<node id>.md, pictures loaded.

The frontend fetches /extensions/<pack>/docs/<node id>/<locale>.md, then /extensions/<pack>/docs/<node id>.md, and
shows the node's description when neither exists; the page's own first heading tells the two apart.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "web" / "docs"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PAGES = sorted(DOCS.glob("GID_*.md"))


@pytest.fixture(scope="module")
def page(chromium_browser: Any, comfy_host: Any) -> Iterator[Any]:
    import json
    import urllib.request

    settings = {"Comfy.VueNodes.Enabled": False, "Comfy.TutorialCompleted": True}
    urllib.request.urlopen(urllib.request.Request(comfy_host.base_url + "/settings", data=json.dumps(settings).encode(),
                                                  method="POST", headers={"Content-Type": "application/json"}),
                           timeout=30).read()
    context = chromium_browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.responses = []
    page.on("response", lambda r: page.responses.append((r.url.split("?", 1)[0], r.status)))
    page.goto(comfy_host.base_url)
    page.wait_for_function("() => window.comfyAPI?.app?.app?.graph && window.LiteGraph?.registered_node_types"
                           "?.GID_MotionTracks", timeout=120_000)
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    context.close()


def test_every_gid_node_has_a_page(comfy_host: Any) -> None:
    ours = sorted(name for name, node in comfy_host.object_info().items()
                  if node["python_module"] == f"custom_nodes.{comfy_host.pack_name}")
    assert ours and ours == [p.stem for p in PAGES]


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: p.stem)
def test_help_panel_shows_the_page(page: Any, comfy_host: Any, doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    title = text.splitlines()[0].lstrip("# ").strip()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    page.evaluate("""(type) => {
        const app = window.comfyAPI.app.app;
        app.graph.clear();
        const node = window.LiteGraph.createNode(type);
        node.pos = [450, 450];  // well below the top bar: the selection toolbox sits above the node
        app.graph.add(node);
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [0, 0];
        app.canvas.deselectAll();
        app.canvas.selectNode(node);
        app.canvas.setDirty(true, true);
    }""", doc.stem)
    page.locator('[data-testid="info-button"]').click(timeout=15_000)
    help_panel = page.locator(".node-help-content")
    heading = help_panel.locator("h1")
    heading.wait_for(timeout=15_000)
    assert heading.inner_text().strip() == title  # the page, not the description shown when none is found
    url = f"{comfy_host.base_url}/extensions/{comfy_host.pack_name}/docs/{doc.stem}.md"
    assert (url, 200) in page.responses
    if pictures:
        page.wait_for_function("""() => {
            const images = [...document.querySelectorAll('.node-help-content img')];
            return images.length > 0 && images.every((im) => im.complete && im.naturalWidth > 0);
        }""", timeout=15_000)
        shown = page.evaluate("() => [...document.querySelectorAll('.node-help-content img')].map((im) => im.src)")
        assert [s.split("/docs/", 1)[1] for s in shown] == pictures
    page.screenshot(path=str(ARTIFACTS / f"help-{doc.stem}.png"))
    page.locator('[data-testid="info-button"]').click()  # the same node again closes the panel
