"""One owner for browser payloads: nodes/ui_payloads.py builds every `ui` key, web/js/gid.js has a view for each."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def payload_keys() -> set[str]:
    return set(re.findall(r'"(gid_\w+)": ', (ROOT / "nodes" / "ui_payloads.py").read_text()))


def test_no_node_builds_a_payload_of_its_own():
    for path in (ROOT / "nodes").glob("*.py"):
        if path.name != "ui_payloads.py":
            assert not re.search(r'ui=\{\s*"', path.read_text()), f"{path.name} builds a ui payload inline"
            assert not re.search(r'"gid_\w+": \[', path.read_text()), f"{path.name} builds a ui payload inline"


def test_the_extension_has_one_view_per_payload_and_no_node_name_sets():
    script = (ROOT / "web" / "js" / "gid.js").read_text()
    views = script[script.index("const VIEWS = {"):script.index("\n};", script.index("const VIEWS = {"))]
    assert payload_keys() == set(re.findall(r"^  (gid_\w+):", views, re.MULTILINE))
    assert "images" in views  # loop files, in ComfyUI's own form
    for path in (ROOT / "web" / "js").glob("*.js"):
        assert not re.search(r'"GID_\w+"', path.read_text()), f"{path.name} dispatches on a node name"
    registrations = [p.name for p in (ROOT / "web" / "js").glob("*.js") if "registerExtension(" in p.read_text()]
    assert registrations == ["gid.js"]
