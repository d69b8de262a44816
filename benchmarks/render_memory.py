"""Peak memory of rendering: frames into one preallocated output tensor vs streamed chunk by chunk.

    python benchmarks/render_memory.py [--size 1920x1080] [--frames 60,300] [--modes preallocated,streamed]
                                       [--threads 2] [--json]

Each case runs in a fresh process. "before" is the resident memory once the picture, the spectral volume
and the motion texture exist (what any way of rendering needs); "rendering adds" is the largest resident
memory seen while rendering (sampled every 5 ms) minus "before"; "peak" is the process's high-water mark
(ru_maxrss, which also covers building the benchmark's random motion). The preallocated case holds every frame as
float32 (the IMAGE batch a ComfyUI node returns, 4 bytes x 3 x H x W per frame); the streamed case takes
render_chunks' chunks and converts each to uint8 (what a video encoder consumes), keeping nothing.
Baseline in the same run: the size of the float32 output itself.
"""
from __future__ import annotations

import argparse
import json
import resource
import gc
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MB = 1024 * 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / MB


class RssSampler(threading.Thread):
    """Largest resident memory seen while it runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.largest = rss_mb()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.005):
            self.largest = max(self.largest, rss_mb())


def run_case(mode: str, width: int, height: int, frames: int) -> dict:
    from gid_engine.render.renderer import SplatRenderer, render_chunks, render_frames
    from render import test_motion

    picture = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    motion = test_motion(height, width, frames)
    gc.collect()
    before = rss_mb()
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    if mode == "preallocated":
        out = torch.empty(1, frames, height, width, 3)
        render_frames(SplatRenderer(), picture, motion, out=out)
        checksum = float(out[:, -1].mean())
    else:
        checksum = 0.0
        for _, chunk in render_chunks(SplatRenderer(), picture, motion):
            encoded = (chunk * 255 + 0.5).clamp_(0, 255).to(torch.uint8)  # what an encoder is handed
            checksum = float(encoded[:, -1].float().mean()) / 255
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    largest = max(sampler.largest, rss_mb())
    return {"mode": mode, "size": f"{width}x{height}", "frames": frames, "before_mb": round(before, 1),
            "peak_mb": round(peak_rss_mb(), 1), "adds_mb": round(largest - before, 1),
            "output_float32_mb": round(frames * height * width * 3 * 4 / MB, 1),
            "seconds": round(seconds, 2), "fps": round(frames / seconds, 2), "checksum": round(checksum, 6)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", default="60,300")
    parser.add_argument("--modes", default="preallocated,streamed",
                        help="which cases (preallocated 300 frames at 1080p needs about 9 GB)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--case", nargs=2, metavar=("MODE", "FRAMES"), help=argparse.SUPPRESS)  # one child run
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.case:
        print(json.dumps(run_case(args.case[0], width, height, int(args.case[1]))))
        return 0
    rows = []
    for frames in (int(f) for f in args.frames.split(",")):
        for mode in args.modes.split(","):
            command = [sys.executable, __file__, "--size", args.size, "--case", mode, str(frames)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row = rows[-1]
            print(f"{row['size']} {row['frames']:>4} frames {row['mode']:>12}: peak {row['peak_mb']:8.1f} MB "
                  f"(before {row['before_mb']:7.1f}, rendering adds {row['adds_mb']:8.1f}; float32 output "
                  f"{row['output_float32_mb']:8.1f} MB), {row['fps']:.2f} frames/s", flush=True)
    if args.json:
        print(json.dumps({"threads": torch.get_num_threads(), "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
