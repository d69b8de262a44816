"""Peak memory of the CLI's streaming path: picture to looping video, rendered and encoded chunk by chunk.

    python benchmarks/cli_memory.py [--size 1920x1080] [--frames 60,300,900] [--format mp4] [--threads 2]
                                    [--picture samples/dandelion.jpg] [--json]

Each case runs `python -m gid_engine animate PICTURE -o out.FORMAT --size SIZE --frames N` in a fresh process
and reads that process's own peak resident memory (ru_maxrss from wait4: everything it ran, the motion prior,
rendering and the encoder's threads included). Baseline in the same run: what the frames alone would take held
as one float32 batch (the IMAGE tensor a ComfyUI node returns), 12 bytes per pixel per frame. The goal is a peak
that stays flat as N grows (and under 3 GB at 1080p).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def run_case(picture: str, size: str, frames: int, fmt: str, threads: int | None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / f"loop.{fmt}"
        command = [sys.executable, "-m", "gid_engine", "animate", picture, "-o", str(output), "--size", size,
                   "--frames", str(frames)]
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the largest of all children so far).
        stdout = child.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{stdout}")
        written = output.stat().st_size
    width, height = (int(v) for v in size.lower().split("x"))
    return {"size": size, "frames": frames, "format": fmt, "peak_mb": round(usage.ru_maxrss / 1024, 1),
            "frames_float32_mb": round(frames * width * height * 12 / MB, 1), "file_mb": round(written / MB, 2),
            "seconds": round(seconds, 1), "frames_per_s": round(frames / seconds, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", default="60,300,900")
    parser.add_argument("--format", default="mp4", choices=["mp4", "webm", "webp", "gif"])
    parser.add_argument("--picture", default=str(ROOT / "samples" / "dandelion.jpg"))
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the CLI (default: unset)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for frames in (int(f) for f in args.frames.split(",")):
        rows.append(run_case(args.picture, args.size, frames, args.format, args.threads))
        row = rows[-1]
        print(f"{row['size']} {row['frames']:>5} frames -> {row['format']}: peak {row['peak_mb']:8.1f} MB resident "
              f"(float32 frames alone: {row['frames_float32_mb']:9.1f} MB, ratio "
              f"{row['peak_mb'] / row['frames_float32_mb']:.3f}), {row['seconds']:7.1f} s, "
              f"{row['frames_per_s']:.2f} frames/s, file {row['file_mb']:.1f} MB", flush=True)
    if args.json:
        print(json.dumps({"results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
