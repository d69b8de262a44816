"""What the Comfy Registry and ComfyUI's help panel and node search read from the repository, checked without a host:
pyproject's [tool.comfy], the icon, a help page and search aliases for every node, and the media they show."""
from __future__ import annotations

import ast
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ICON_PREFIX = "https://raw.githubusercontent.com/comfyui-gid/comfyui-gid/main/"
# The gallery and help media together (the README and every help page show them): small enough for the repository.
MEDIA_BUDGET_BYTES = 400 * 1024


def node_ids() -> list[str]:
    found = []
    for path in sorted((REPO / "nodes").glob("*.py")):
        found += re.findall(r'node_id="(GID_\w+)"', path.read_text(encoding="utf-8"))
    return found


def search_aliases() -> dict[str, list[str]]:
    tree = ast.parse((REPO / "nodes" / "search_aliases.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "SEARCH_ALIASES":
            return ast.literal_eval(node.value)
    raise AssertionError("nodes/search_aliases.py defines no SEARCH_ALIASES")


def test_pyproject_is_registry_ready() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*", project["name"]) and len(project["name"]) < 100
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["urls"]["Repository"].startswith("https://github.com/")
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert re.fullmatch(r">=\s*0\.3\.\d+", comfy["requires-comfyui"])
    # the icon is a file of this repository, square and at most 400 px
    assert comfy["Icon"].startswith(ICON_PREFIX)
    icon = REPO / comfy["Icon"][len(ICON_PREFIX):]
    svg = ET.parse(icon).getroot()
    width, height = float(svg.get("width")), float(svg.get("height"))
    assert width == height <= 400 and svg.get("viewBox") == f"0 0 {width:g} {height:g}"


def test_every_node_has_a_help_page_and_search_aliases() -> None:
    ids = node_ids()
    assert len(ids) == len(set(ids)) >= 14
    pages = sorted(p.stem for p in (REPO / "web" / "docs").glob("*.md"))
    assert pages == sorted(ids)
    aliases = search_aliases()
    assert sorted(aliases) == sorted(ids)
    assert all(words and all(w == w.strip().lower() and w for w in words) for words in aliases.values())
    every = {w for words in aliases.values() for w in words}
    assert {"cinemagraph", "animate picture", "loop", "sway"} <= every  # the words the issue asked for


def test_pages_and_readme_show_media_that_exist() -> None:
    docs = REPO / "web" / "docs"
    shown = set()
    for page in docs.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        title = text.splitlines()[0]
        assert title.startswith("# "), page.name
        for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            assert (docs / link).is_file(), (page.name, link)
            shown.add((docs / link).resolve())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for link in re.findall(r"!\[[^\]]*\]\((web/docs/media/[^)]+)\)", readme):
        assert (REPO / link).is_file(), link
        shown.add((REPO / link).resolve())
    media = sorted((docs / "media").iterdir())
    assert {p.resolve() for p in media} == shown  # nothing shipped that nothing shows
    assert sum(p.stat().st_size for p in media) <= MEDIA_BUDGET_BYTES
