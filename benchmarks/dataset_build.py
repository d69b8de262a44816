"""Dataset building in parallel: python -m gid_engine.data VIDEOS OUT --workers 1 vs --workers N, same clips.

    nice -n 10 python benchmarks/dataset_build.py [--json] [--clips 6] [--workers 2] [--size 128x96]

The clips are variants of samples/dandelion_sway.mp4 (mirrored, reversed, shifted), written as mp4. Both builds
run the real CLI in a subprocess; reported: wall seconds of each, the speed-up, and whether both wrote the same
samples (same sources and files, tensors equal). Timings on a shared 2-core CPU are noisy.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gid_engine.loops.media import read_video, write_animation  # noqa: E402
from gid_engine.training.dataset import PairDataset  # noqa: E402

CLIP = ROOT / "samples" / "dandelion_sway.mp4"


def write_clips(folder: Path, count: int) -> list[Path]:
    """`count` variants of the sample clip (in two sub-folders: the builder searches recursively)."""
    frames, fps = read_video(CLIP)
    variants = [frames, frames.flip(2), frames.flip(0), frames.flip(0).flip(2)]
    paths = []
    for i in range(count):
        clip = variants[i % 4]
        shift = 8 * (i // 4)
        clip = torch.roll(clip, shifts=shift, dims=2) if shift else clip
        paths.append(write_animation(clip, folder / f"set{i % 2}" / f"clip{i:02d}.mp4", fps))
    return paths


def build(videos: Path, out: Path, workers: int, size: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gid_engine.data", str(videos), str(out), "--size", size, "--fps", "24",
                    "--period", "24", "--stride", "12", "--bins", "8", "--max-camera-px", "1000",
                    "--min-reliable", "0", "--workers", str(workers)], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def same_samples(a: Path, b: Path) -> bool:
    da, db = PairDataset(a), PairDataset(b)
    if [s["file"] for s in da.manifest["samples"]] != [s["file"] for s in db.manifest["samples"]]:
        return False
    for i in range(len(da)):
        pa, pb = da.pair(i), db.pair(i)
        if not (torch.equal(pa.image, pb.image) and torch.equal(pa.volume.coeffs, pb.volume.coeffs)
                and torch.equal(pa.frames, pb.frames)):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", default="128x96")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        write_clips(tmp / "videos", args.clips)
        serial = build(tmp / "videos", tmp / "one", 1, args.size)
        parallel = build(tmp / "videos", tmp / "many", args.workers, args.size)
        figures = {"clips": args.clips, "samples": len(PairDataset(tmp / "one")), "size": args.size,
                   "workers": args.workers, "workers_1_seconds": round(serial, 2),
                   f"workers_{args.workers}_seconds": round(parallel, 2), "speedup": round(serial / parallel, 3),
                   "same_samples": same_samples(tmp / "one", tmp / "many")}
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
