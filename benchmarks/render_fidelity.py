"""Renderer fidelity: re-render frame t of real clips from frame 0 and the flow 0 -> t; PSNR and SSIM.

    python benchmarks/render_fidelity.py CLIP_OR_FOLDER [...] [--frames 48] [--size 384] [--json]

For each clip (mp4/avi/mov/webm/mkv via OpenCV, animated webp/gif via Pillow) the flow from frame 0 to each
later frame is estimated with OpenCV's DIS optical flow (direct reference-to-frame flow, as the paper does);
frame t is then rendered from frame 0 by
  (a) the pack's renderer (multi-scale softmax splatting weighted by the time-averaged flow magnitude),
  (b) cv2.remap backward warping with the negated flow (what users of other tools get),
  (c) average splatting (equal weights, single scale, holes filled),
  (d) repeating frame 0,
and compared with the real frame t. A synthetic set with known motion (a textured object swaying over a
textured background, composited exactly) measures the renderers with the exact flow, free of flow errors.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gid_engine.render.renderer import (  # noqa: E402
    DEFAULT_TEMPERATURE, METRIC_REFERENCE_SIZE, SplatRenderer, fill_holes)
from gid_engine.render.splat import softmax_splat  # noqa: E402

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v"}
ANIMATED_SUFFIXES = {".webp", ".gif"}


def load_clip(path: Path, max_frames: int, long_side: int) -> np.ndarray:
    """RGB uint8 frames [T, H, W, 3], resized so the long side is at most `long_side`."""
    frames = []
    if path.suffix.lower() in ANIMATED_SUFFIXES:
        from PIL import Image

        with Image.open(path) as im:
            for i in range(min(getattr(im, "n_frames", 1), max_frames)):
                im.seek(i)
                frames.append(np.asarray(im.convert("RGB")))
    else:
        cap = cv2.VideoCapture(str(path))
        while len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        cap.release()
    if len(frames) < 2:
        raise ValueError(f"{path}: fewer than 2 frames could be read")
    h, w = frames[0].shape[:2]
    scale = min(1.0, long_side / max(h, w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def estimate_flows(frames: np.ndarray) -> np.ndarray:
    """Flow [T-1, 2, H, W] from frame 0 to each later frame (OpenCV DIS, medium preset)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    reference = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    flows = [dis.calc(reference, cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), None) for f in frames[1:]]
    return np.stack(flows).transpose(0, 3, 1, 2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over RGB channels (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03)."""
    x = torch.from_numpy(a).double().permute(2, 0, 1).unsqueeze(1)
    y = torch.from_numpy(b).double().permute(2, 0, 1).unsqueeze(1)
    t = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-t ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).view(1, 1, 11, 11)

    def blur(v):
        return F.conv2d(v, window)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


def render_all(frame0: np.ndarray, flows: np.ndarray, temperature: float) -> dict[str, list[np.ndarray]]:
    h, w = frame0.shape[:2]
    picture = torch.from_numpy(frame0).float().permute(2, 0, 1).unsqueeze(0) / 255
    fields = torch.from_numpy(flows).float()
    depth = fields.pow(2).sum(1, keepdim=True).sqrt().mean(0, keepdim=True)  # time-averaged flow magnitude
    metric = depth * (METRIC_REFERENCE_SIZE / max(h, w) * temperature)
    ours = SplatRenderer().render_chunk(picture, fields.unsqueeze(1), metric)[:, 0]
    avg, coverage = softmax_splat(picture.expand(len(fields), 3, h, w), fields, torch.zeros(1, 1, h, w))
    average = fill_holes(avg, coverage)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    remap = [cv2.remap(frame0, gx - f[0], gy - f[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
             for f in flows]

    def to_u8(t):
        return [(f.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8) for f in t]

    return {"ours": to_u8(ours), "cv2_remap": remap, "average_splat": to_u8(average),
            "repeat_frame0": [frame0] * len(flows)}


def evaluate(frames: np.ndarray, flows: np.ndarray, temperature: float) -> dict:
    rendered = render_all(frames[0], flows, temperature)
    scores = {}
    for method, outs in rendered.items():
        p = [psnr(o, t) for o, t in zip(outs, frames[1:])]
        s = [ssim(o, t) for o, t in zip(outs, frames[1:])]
        scores[method] = {"psnr": float(np.mean(p)), "ssim": float(np.mean(s))}
    return scores


def synthetic_clip(seed: int, frames: int = 24, size: tuple[int, int] = (160, 256), supersample: int = 4
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A textured disc sways (up to 6 px) over a still textured background: exact frames and exact flow.

    Frames are composited at `supersample` times the resolution with whole-pixel shifts there and then
    area-averaged, like a camera integrating light, so the reference frames carry no interpolation blur
    that would favour one renderer's resampling.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    s = supersample
    big_h, big_w = h * s, w * s

    def texture():
        coarse = rng.random((h // 8, w // 8, 3)).astype(np.float32)
        fine = rng.random((h, w, 3)).astype(np.float32)
        tex = np.clip(0.7 * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) + 0.3 * fine, 0, 1)
        return cv2.resize(tex, (big_w, big_h), interpolation=cv2.INTER_NEAREST)

    background, foreground = texture(), texture()
    yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
    cy, cx, radius = big_h * 0.5, big_w * (0.35 + 0.3 * rng.random()), big_h * 0.3
    phase = rng.random() * 2 * np.pi
    inside0 = ((xx - cx) ** 2 + (yy - cy) ** 2) <= radius ** 2
    small_inside0 = cv2.resize(inside0.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.5
    out, flows = [], []
    for t in range(frames):
        sx = round(s * (6 * math.sin(2 * math.pi * t / frames + phase) - 6 * math.sin(phase)))
        sy = round(s * 2 * math.sin(4 * math.pi * t / frames))
        inside = ((xx - cx - sx) ** 2 + (yy - cy - sy) ** 2) <= radius ** 2
        moved = np.roll(foreground, (sy, sx), axis=(0, 1))
        frame = np.where(inside[..., None], moved, background)
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        out.append((small * 255 + 0.5).astype(np.uint8))
        flows.append(np.stack([np.where(small_inside0, sx / s, 0), np.where(small_inside0, sy / s, 0)]).astype(np.float32))
    return np.stack(out), np.stack(flows[1:])


def expand(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES | ANIMATED_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise SystemExit(f"not found: {p}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", help="clip files or folders")
    parser.add_argument("--frames", type=int, default=48, help="frames read per clip")
    parser.add_argument("--size", type=int, default=384, help="long side the clips are resized to")
    parser.add_argument("--synthetic", type=int, default=4, help="number of synthetic clips")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {"clips": {}, "synthetic": {}}
    for path in expand(args.clips):
        frames = load_clip(path, args.frames, args.size)
        results["clips"][path.name] = evaluate(frames, estimate_flows(frames), args.temperature)
    for seed in range(args.synthetic):
        frames, flows = synthetic_clip(seed)
        results["synthetic"][f"synthetic_{seed}"] = evaluate(frames, flows, args.temperature)
    for group in ("clips", "synthetic"):
        if not results[group]:
            continue
        methods = list(next(iter(results[group].values())))
        mean = {m: {k: float(np.mean([r[m][k] for r in results[group].values()])) for k in ("psnr", "ssim")}
                for m in methods}
        results[f"{group}_mean"] = mean
        print(f"\n{group} (PSNR dB / SSIM)")
        print(f"{'clip':<40} " + " ".join(f"{m:>20}" for m in methods))
        for name, r in list(results[group].items()) + [("MEAN", mean)]:
            print(f"{name[:40]:<40} " + " ".join(f"{r[m]['psnr']:>11.2f} / {r[m]['ssim']:.4f}" for m in methods))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
