"""Renderer speed: frames per second of the pack's renderer against baselines on the same motion.

    python benchmarks/render.py [--sizes 512x288,1024x576,1920x1080] [--frames 32] [--threads 2]
                                [--device cpu|cuda] [--compile] [--before-redraw REV] [--motion breeze|sample]
                                [--json]

Measured in the same run on the same displacement fields: --motion breeze (the default) is smooth random motion,
about 1 % of the width at its largest (it magnifies about half of the picture by 1.05x or more in every frame);
--motion sample is what the built-in prior makes of samples/dandelion.jpg, rendered from that picture (a real
loop: most of it is not magnified).
- renderer: what Softmax Splat Render does (render_frames with SplatRenderer()): motion-texture synthesis,
  depth proxy, splatting, hole filling, frames written to an output tensor; on CPU the fused numba
  pipeline, on CUDA the Triton splatting kernel. renderer_torch: the same with backend="torch" (the
  plain-torch fallback, what the pack did before the fused kernels).
- operator: softmax_splat alone on RGB (fused kernel); operator_torch: its plain-torch fallback.
- naive_splat: a straightforward softmax splat, one boolean-compacted index_add_ per bilinear corner;
- cv2_remap: backward warping with the negated flow (no occlusion handling; always on CPU).
- renderer_before_redraw (CPU with numba, in a git checkout): the fused renderer as it was at git revision
  --before-redraw (default: the last one before the stretched-surface redraw), loaded from git and run in the
  same process: what the redraw costs, measured against the same machine's mood.
With --compile the torch operator is also timed through torch.compile (fused C++ on CPU, Triton on CUDA).
Each figure is the best of --repeats runs after a warm-up (kernel compilation is not timed), in wall-clock
frames/s and in frames per CPU-second (all threads together; stable when the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.git_baseline import module_at  # noqa: E402
from gid_engine.spectral.motion import MotionTexture  # noqa: E402
from gid_engine.render.renderer import SplatRenderer, importance_metric, render_frames  # noqa: E402
from gid_engine.spectral.volume import SpectralVolume  # noqa: E402
from gid_engine.render.splat import pick_backend, shifted_exp, softmax_splat, torch_softmax_splat  # noqa: E402
from gid_engine.render import renderer as renderer_module  # noqa: E402
from gid_engine.render.kernels import cpu as cpu_kernel, fallback  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BEFORE_REDRAW = "5a397be"  # the fused renderer before the stretched-surface redraw (fe6bd6d)


def renderer_at(revision: str):
    """A SplatRenderer whose fused CPU pipeline is the kernel module as it was at `revision` (loaded from git beside
    today's kernels, whose helpers it imports), or None where that cannot be had (no git checkout, no numba)."""
    if not cpu_kernel.available():
        return None
    try:
        module = module_at(revision, "gid_engine/render/kernels/cpu_render.py", "gid_engine.render.kernels")
    except (OSError, subprocess.CalledProcessError):
        return None

    class BeforeRedraw(SplatRenderer):
        def _render_fused(self, image, flow, metric):
            h, w = flow.shape[-2:]
            margin = min(math.ceil(cpu_kernel.moving_extent(flow, self.still_below_px)) + 1, max(h, w))
            pad = (margin, margin, margin, margin)
            features = torch.nn.functional.pad(torch.cat([image, metric.to(image.dtype)], dim=1), pad,
                                               mode="replicate")
            features = torch.cat([features, torch.nn.functional.pad(torch.ones_like(image[:, :1]), pad)], dim=1)
            z = features[:, 3].contiguous()
            return module.render_frames(features, z, shifted_exp(z), flow, margin, self.still_below_px,
                                        renderer_module.BORDER_TRUST, self.background_preference)

    return BeforeRedraw()


def naive_softmax_splat(features, flow, metric):
    """Baseline: the definition with one compacting index_add_ per corner and a global max shift."""
    n, c, h, w = features.shape
    device = features.device
    gy, gx = torch.meshgrid(torch.arange(h, dtype=features.dtype, device=device),
                            torch.arange(w, dtype=features.dtype, device=device), indexing="ij")
    tx, ty = gx + flow[:, 0], gy + flow[:, 1]
    x0, y0 = torch.floor(tx), torch.floor(ty)
    fx, fy = tx - x0, ty - y0
    z = metric.expand(n, 1, h, w)[:, 0]
    weight_z = torch.exp(z - z.amax())
    num = torch.zeros(n * h * w, c, device=device)
    den = torch.zeros(n * h * w, device=device)
    base = (torch.arange(n, device=device) * h * w).view(n, 1, 1)
    feats = features.permute(0, 2, 3, 1)
    for dx, dy, b in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xs, ys = x0.long() + dx, y0.long() + dy
        ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        idx = (base + ys * w + xs)[ok]
        wt = (b * weight_z)[ok]
        num.index_add_(0, idx, feats[ok] * wt[:, None])
        den.index_add_(0, idx, wt)
    return (num / den.clamp(min=1e-12)[:, None]).view(n, h, w, c).permute(0, 3, 1, 2)


def test_motion(height: int, width: int, frames: int, seed: int = 0) -> MotionTexture:
    """Smooth random motion, about 1 % of the width at its largest: like a breezy scene."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 16 * 4, 6, 10, generator=g)
    fields = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    decay = torch.exp(-torch.arange(16) / 4.0).repeat_interleave(4).view(1, -1, 1, 1)
    channels = fields * decay * (150 / 2 * 0.004 * width)
    volume = SpectralVolume.from_channels(channels)
    return MotionTexture.from_volume(volume, frames, 30.0)


def timed(fn, repeats: int, device: str) -> float:
    def run():
        fn()
        if device == "cuda":
            torch.cuda.synchronize()

    run()  # warm-up (allocations, kernel compilation)
    best, best_cpu = math.inf, math.inf
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best, best_cpu


def sample_motion(height: int, width: int, frames: int) -> tuple[torch.Tensor, MotionTexture]:
    """The shipped sample at height x width and the built-in prior's motion for it (default settings, seed 0)."""
    from gid_engine.loops.media import read_image
    from gid_engine.sources.prior import ProceduralPrior

    picture = read_image(ROOT / "samples" / "dandelion.jpg").permute(0, 3, 1, 2)
    picture = torch.nn.functional.interpolate(picture, size=(height, width), mode="area")
    return picture, MotionTexture.from_volume(ProceduralPrior().predict(picture, seed=0), frames, 30.0)


def bench_size(height: int, width: int, frames: int, repeats: int, use_compile: bool, device: str,
               before_redraw: SplatRenderer | None = None, motion_kind: str = "breeze") -> dict:
    if motion_kind == "sample":
        picture, cpu_motion = sample_motion(height, width, frames)
    else:
        picture = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
        cpu_motion = test_motion(height, width, frames)
    fields_cpu = cpu_motion.fields(0, frames)[:, 0]  # [N, 2, H, W]
    image_np = (picture[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    flows_np = fields_cpu.numpy()
    picture = picture.to(device)
    motion = cpu_motion.replace(volume=cpu_motion.volume.to(device))
    fields = fields_cpu.to(device)
    metric = importance_metric(motion)
    rgb = picture.expand(frames, 3, height, width)

    def remap():
        for f in flows_np:
            cv2.remap(image_np, gx - f[0], gy - f[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def render(backend):
        return lambda: render_frames(SplatRenderer(backend=backend), picture, motion, out_device=device)

    results = {
        "renderer": timed(render("auto"), repeats, device),
        "renderer_torch": timed(render("torch"), repeats, device),
        "operator": timed(lambda: softmax_splat(picture, fields, metric), repeats, device),
        "operator_torch": timed(lambda: softmax_splat(picture, fields, metric, backend="torch"), repeats, device),
        "naive_splat": timed(lambda: naive_softmax_splat(rgb, fields, metric), repeats, device),
        "cv2_remap": timed(remap, repeats, "cpu"),
    }
    if before_redraw is not None and device == "cpu":
        results["renderer_before_redraw"] = timed(
            lambda: render_frames(before_redraw, picture, motion, out_device=device), repeats, device)
    if use_compile:
        compiled = torch.compile(torch_softmax_splat, dynamic=False)
        results["operator_compiled"] = timed(lambda: compiled(picture, fields, metric), repeats, device)
    fps = {name: frames / wall for name, (wall, _) in results.items()}
    # Frames per second of CPU time (all threads together): what one core does; unlike wall-clock figures
    # it barely changes when other processes compete for the cores.
    cpu_fps = {name: frames / cpu for name, (_, cpu) in results.items()}
    row = {"size": f"{width}x{height}", "frames": frames, "motion": motion_kind, "fps": fps, "cpu_fps": cpu_fps,
           "renderer_vs_torch_renderer": fps["renderer"] / fps["renderer_torch"],
           "renderer_vs_remap": fps["renderer"] / fps["cv2_remap"],
           "operator_vs_naive": fps["operator"] / fps["naive_splat"]}
    if "renderer_before_redraw" in cpu_fps:  # per CPU-second: what the redraw costs, steady on a shared machine
        row["renderer_vs_before_redraw"] = cpu_fps["renderer"] / cpu_fps["renderer_before_redraw"]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512x288,1024x576,1920x1080")
    parser.add_argument("--frames", type=int, default=32, help="frames per size (fewer are used above 1024 px)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd operator")
    parser.add_argument("--threads", type=int, default=None, help="torch/numba threads (default: torch's)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--before-redraw", default=BEFORE_REDRAW, metavar="REV",
                        help="git revision of the renderer before the stretched-surface redraw ('' to skip it)")
    parser.add_argument("--motion", default="breeze", choices=["breeze", "sample"],
                        help="breeze: smooth random test motion; sample: the built-in prior's loop of the sample")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.threads:
        torch.set_num_threads(args.threads)
    probe = torch.zeros(1, 1, 1, 1, device=args.device)
    kernel = pick_backend("auto", probe, torch.zeros(1, 2, 1, 1, device=args.device), probe)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"splatting kernel: {kernel}")
    before_redraw = renderer_at(args.before_redraw) if args.before_redraw and args.device == "cpu" else None
    if args.before_redraw and args.device == "cpu" and before_redraw is None:
        print(f"the renderer at {args.before_redraw} is not timed: no git checkout or no numba here", flush=True)
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        frames = max(4, args.frames * 512 * 288 // (width * height)) if width * height > 600_000 else args.frames
        rows.append(bench_size(height, width, frames, args.repeats, args.compile, args.device, before_redraw,
                               args.motion))
        row = rows[-1]
        if len(rows) == 1:
            print(f"{'size':>10} {'frames':>6} " + " ".join(f"{n:>18}" for n in row["fps"])
                  + "  renderer/torch  renderer/remap  operator/naive")
        print(f"{row['size']:>10} {row['frames']:>6} " + " ".join(f"{v:>14.1f} fps" for v in row["fps"].values())
              + f"  {row['renderer_vs_torch_renderer']:>14.2f}  {row['renderer_vs_remap']:>14.3f}"
              f"  {row['operator_vs_naive']:>14.2f}", flush=True)
        print(f"{'per CPU-s':>17} " + " ".join(f"{v:>14.1f} fps" for v in row["cpu_fps"].values()), flush=True)
        if "renderer_vs_before_redraw" in row:
            print(f"{'renderer / renderer before the redraw, per CPU-s':>50}: {row['renderer_vs_before_redraw']:.2f}",
                  flush=True)
    # A kernel that failed on first use was replaced by torch: its rows then time the torch path.
    for name, cause in fallback.failures().items():
        print(f"the fused {name} kernel failed and torch ran instead: {cause}", flush=True)
    if args.json:
        print(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "device": args.device,
                          "kernel": kernel, "kernel_failures": fallback.failures(), "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
