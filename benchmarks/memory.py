"""Peak memory of the engine's large-output stages, each measured in its own subprocess (peak RSS).

    python benchmarks/memory.py [--prior 1920x1080,3840x2160,7680x4320] [--loop 1920x1080x60]
                                [--engine DIR] [--json]

prior WxH: ProceduralPrior().predict on a WxH picture (the dandelion sample, resized).
loop WxHxN: make_loop on an N-frame clip that does not loop (cross-faded), retimed to 2N frames, repeated
twice. Each row gives the peak RSS, the baseline of the same subprocess before the call (inputs made,
modules imported), the bytes of the output itself, and the extra memory over baseline + output (what the
stage's own working memory costs). --engine DIR measures another checkout's gid_engine (e.g. an older
commit exported with `git archive`), so a before/after pair comes from one run on one machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import torch
kind, size = sys.argv[2], [int(v) for v in sys.argv[3].split("x")]
torch.set_num_threads(2)

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))

if kind == "prior":
    from PIL import Image
    import numpy as np
    from gid_engine.sources.prior import ProceduralPrior
    w, h = size
    picture = Image.open(sys.argv[4]).convert("RGB").resize((w, h))
    image = torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1)[None].float() / 255
    del picture
    base = rss()
    volume = ProceduralPrior().predict(image, seed=0)
    out = volume.coeffs.numel() * volume.coeffs.element_size()
    grid = [volume.width, volume.height]
else:
    from gid_engine.loops.loop import make_loop
    w, h, n = size
    t = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1) / n
    frames = (t + torch.linspace(0, 0.2, w).view(1, 1, w, 1)).expand(n, h, w, 3).contiguous()
    base = rss()
    looped, report = make_loop(frames, frames_per_loop=2 * n, repeats=2)
    out = looped.numel() * looped.element_size()
    grid = [report["crossfade_frames"], report["output_frames"]]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"base": base, "peak": peak, "output": out, "grid": grid}))
"""


def measure(engine: Path, kind: str, size: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(engine), kind, size, str(REPO / "samples" / "dandelion.jpg")],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {"kind": kind, "size": size, "error": (done.stderr.strip().splitlines() or ["killed"])[-1]}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    gb = 1024 ** 3
    return {"kind": kind, "size": size, "peak_gb": round(row["peak"] / gb, 3), "baseline_gb": round(row["base"] / gb, 3),
            "output_gb": round(row["output"] / gb, 3),
            "extra_gb": round((row["peak"] - row["base"] - row["output"]) / gb, 3),
            "extra_over_output": round((row["peak"] - row["base"] - row["output"]) / max(row["output"], 1), 3),
            "detail": row["grid"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", default="1920x1080,3840x2160,7680x4320", help="picture sizes WxH, comma-separated")
    parser.add_argument("--loop", default="1920x1080x60", help="clips WxHxN, comma-separated ('' for none)")
    parser.add_argument("--engine", default=str(REPO), help="folder holding the gid_engine to measure")
    parser.add_argument("--json", action="store_true", help="print all figures as one JSON object on the last line")
    args = parser.parse_args(argv)
    rows = [measure(Path(args.engine), "prior", s) for s in filter(None, args.prior.split(","))]
    rows += [measure(Path(args.engine), "loop", s) for s in filter(None, args.loop.split(","))]
    for row in rows:
        if "error" in row:
            print(f"{row['kind']} {row['size']}: failed: {row['error']}")
            continue
        what = (f"volume {row['detail'][0]}x{row['detail'][1]}" if row["kind"] == "prior"
                else f"crossfade {row['detail'][0]}, {row['detail'][1]} frames out")
        print(f"{row['kind']} {row['size']} ({what}): peak {row['peak_gb']:.2f} GB = baseline {row['baseline_gb']:.2f}"
              f" + output {row['output_gb']:.2f} + working {row['extra_gb']:.2f} GB "
              f"({row['extra_over_output']:.2f}x the output)")
    if args.json:
        print(json.dumps({"engine": args.engine, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
