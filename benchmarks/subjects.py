"""How well the prior's subjects cue (gid_engine/sources/prior/subjects.py) covers what must stay still.

    python benchmarks/subjects.py [PICTURES...] [--labels benchmarks/pictures/labels.json] [--sheet out.png] [--json]

With no pictures it reads benchmarks/pictures/*.jpg (and their labels.json) or, without them, samples/.
Per picture: the share of the "still" boxes' area the mask covers (recall, want high), the share of the
"moves" boxes' area it wrongly covers (want ~0), the subjects found, and the time of subject_mask at the
prior's size (640 px long side) on the threads torch and OpenCV are given (set them with --threads): wall
time and the process's CPU time (the honest figure on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gid_engine.sources.prior.subjects import detect_subjects, subject_mask  # noqa: E402

LONG_SIDE = 640


def load_labels(path: Path | None) -> dict:
    """labels.json as {file name: {"still": [[x0, y0, x1, y1], ...], "moves": [...]}} (boxes in the file's
    pixels); a list of {"file"/"image"/"name": ..., "still": ..., "moves": ...} entries is read too."""
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "pictures" in data:
        data = data["pictures"]
    if isinstance(data, list):
        data = {Path(e.get("file") or e.get("image") or e.get("name")).name: e for e in data}
    return {Path(k).name: v for k, v in data.items()}


def coverage(mask: np.ndarray, boxes, factor: float) -> float | None:
    """Mean mask value over the union of boxes (given in the original picture's pixels)."""
    if not boxes:
        return None
    region = np.zeros(mask.shape, bool)
    for box in boxes:
        x0, y0, x1, y1 = (int(round(v * factor)) for v in box[:4])
        region[max(0, y0):y1, max(0, x0):x1] = True
    return float(mask[region].mean()) if region.any() else None


def overlay(rgb: np.ndarray, mask: np.ndarray, subjects, labels: dict | None, factor: float) -> np.ndarray:
    tint = np.array([255, 40, 200], np.float32)
    out = rgb.astype(np.float32) * (1 - 0.55 * mask[..., None]) + tint * 0.55 * mask[..., None]
    out = np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))
    for s in subjects:
        x0, y0, x1, y1 = s.box
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 0), 1)
        cv2.putText(out, f"{s.kind} {s.score:.2f}", (x0 + 2, max(10, y0 + 11)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (255, 255, 0), 1, cv2.LINE_AA)
    for key, colour in (("still", (0, 255, 0)), ("moves", (255, 60, 0))):
        for box in (labels or {}).get(key, []):
            x0, y0, x1, y1 = (int(round(v * factor)) for v in box[:4])
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, 1)
    return out


def sheet(tiles: list[tuple[str, np.ndarray]], path: Path, tile_h: int = 240, cols: int = 4) -> None:
    cells = []
    for name, img in tiles:
        h, w = img.shape[:2]
        tw = int(round(w * tile_h / h))
        cell = np.zeros((tile_h + 16, tw, 3), np.uint8)
        cell[16:] = cv2.resize(img, (tw, tile_h), interpolation=cv2.INTER_AREA)
        cv2.putText(cell, name[:48], (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        cells.append(cell)
    width = max(c.shape[1] for c in cells)
    cells = [np.pad(c, ((0, 0), (0, width - c.shape[1]), (0, 0))) for c in cells]
    while len(cells) % cols:
        cells.append(np.zeros_like(cells[0]))
    rows = [np.hstack(cells[i:i + cols]) for i in range(0, len(cells), cols)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pictures", nargs="*", type=Path)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--sheet", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per picture (the best counts)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    pictures = list(args.pictures)
    labels_path = args.labels
    if not pictures:
        bench = ROOT / "benchmarks" / "pictures"
        pictures = sorted(bench.glob("*.jpg")) + sorted(bench.glob("*.png"))
        labels_path = labels_path or bench / "labels.json"
        if not pictures:
            pictures = [ROOT / "samples" / "dandelion.jpg", *sorted((ROOT / "samples" / "gallery").glob("*.jpg"))]
    labels = load_labels(labels_path)
    rows, tiles = [], []
    for path in pictures:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"unreadable: {path}", file=sys.stderr)
            continue
        h, w = bgr.shape[:2]
        factor = min(1.0, LONG_SIDE / max(h, w))
        if factor < 1:
            bgr = cv2.resize(bgr, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        times, cpu = [], []
        for _ in range(max(1, args.repeat)):
            start, start_cpu = time.perf_counter(), time.process_time()
            mask = subject_mask(image)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        subjects = detect_subjects(image)
        m = mask[0, 0].numpy()
        lab = labels.get(path.name)
        row = {"picture": path.name, "size": [rgb.shape[1], rgb.shape[0]], "seconds": round(min(times), 3), "cpu_seconds": round(min(cpu), 3),
               "subjects": [[s.kind, list(s.box), round(s.score, 2), s.source] for s in subjects],
               "mask_share": round(float(m.mean()), 3)}
        if lab:
            still, moves = coverage(m, lab.get("still", []), factor), coverage(m, lab.get("moves", []), factor)
            row["still_recall"] = None if still is None else round(still, 3)
            row["moves_covered"] = None if moves is None else round(moves, 3)
            row["still_boxes"] = [round(coverage(m, [b], factor) or 0, 2) for b in lab.get("still", [])]
            row["moves_boxes"] = [round(coverage(m, [b], factor) or 0, 2) for b in lab.get("moves", [])]
        rows.append(row)
        tiles.append((path.name, overlay(rgb, m, subjects, lab, factor)))
    if args.sheet and tiles:
        sheet(tiles, args.sheet)
    recalls = [r["still_recall"] for r in rows if r.get("still_recall") is not None]
    wrong = [r["moves_covered"] for r in rows if r.get("moves_covered") is not None]
    summary = {"pictures": len(rows), "mean_still_recall": round(float(np.mean(recalls)), 3) if recalls else None,
               "mean_moves_covered": round(float(np.mean(wrong)), 3) if wrong else None,
               "max_seconds": max((r["seconds"] for r in rows), default=None),
               "max_cpu_seconds": max((r["cpu_seconds"] for r in rows), default=None)}
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=1))
    else:
        for r in rows:
            kinds = ",".join(f"{k}:{s}" for k, _, s, _ in r["subjects"]) or "-"
            print(f"{r['picture']:32s} {r['seconds']:.3f}s (cpu {r['cpu_seconds']:.3f}s) recall={r.get('still_recall')} "
                  f"moves_covered={r.get('moves_covered')} share={r['mask_share']} {kinds}")
        print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
