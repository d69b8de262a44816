"""The labelled mobility pictures (benchmarks/pictures/labels.json) are consistent: every file exists, is a small
JPEG, carries a source and a licence, and has at least one "still" and one "moves" box inside the picture."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

PICTURES = Path(__file__).resolve().parents[2] / "benchmarks" / "pictures"
KINDS = ("still", "moves")


def _labels() -> list[dict]:
    return json.loads((PICTURES / "labels.json").read_text(encoding="utf-8"))


def test_labels_cover_every_picture_once() -> None:
    labels = _labels()
    names = [entry["file"] for entry in labels]
    assert len(names) >= 14
    assert len(set(names)) == len(names)
    assert sorted(names) == sorted(p.name for p in PICTURES.glob("*.jpg"))
    assert sum(p.stat().st_size for p in PICTURES.iterdir()) < 2.5 * 1024 * 1024


def test_each_picture_has_origin_licence_and_boxes_inside_it() -> None:
    licences = (PICTURES / "LICENCES.md").read_text(encoding="utf-8")
    for entry in _labels():
        name = entry["file"]
        for key in ("source", "licence", "scene"):
            assert isinstance(entry.get(key), str) and entry[key].strip(), f"{name}: {key} missing"
        assert name in licences, f"{name} is not in LICENCES.md"
        with Image.open(PICTURES / name) as image:
            assert image.format == "JPEG", name
            width, height = image.size
        assert max(width, height) <= 640, name
        for kind in KINDS:
            boxes = entry[kind]
            assert boxes, f"{name}: no {kind} box"
            for box in boxes:
                assert len(box) == 4 and all(isinstance(v, int) for v in box), f"{name}: {kind} {box}"
                x0, y0, x1, y1 = box
                assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, f"{name}: {kind} {box} outside {width}x{height}"
