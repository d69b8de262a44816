"""Gallery of the built-in motion prior: every still with every preset, in one command.

    .venv/bin/python scripts/gallery.py [--size 384] [--frames 60] [--seed 0] [--json]

Writes gallery/out/contact_sheet.png (rows: stills; columns: the picture, then one tile per preset showing
where and how much it moves), looping WebPs (each still with `auto` and with the preset that suits it) and
prints per-run figures: the log-amplitude correlation of the band profile with the measured natural
spectrum (bins 1..15), rendered hole fraction and largest hole, straight-edge tearing, and timings.
Stills: samples/dandelion.jpg (CC0) and samples/gallery/*.jpg (CC-BY-4.0); see samples/LICENSE.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gid_engine import imageops  # noqa: E402
from gid_engine.loops.media import write_animation  # noqa: E402
from gid_engine.spectral.motion import MotionTexture  # noqa: E402
from gid_engine.spectral.normalization import natural_motion_spectrum  # noqa: E402
from gid_engine.sources.prior import PRESETS, ProceduralPrior  # noqa: E402
from gid_engine.render.renderer import SplatRenderer, importance_metric, render_frames  # noqa: E402
from gid_engine.render.splat import softmax_splat  # noqa: E402

STILLS = {
    "dandelion": (REPO / "samples" / "dandelion.jpg", "foliage"),
    "forest_stream": (REPO / "samples" / "gallery" / "forest_stream.jpg", "water ripples"),
    "autumn_meadow": (REPO / "samples" / "gallery" / "autumn_meadow.jpg", "clouds drift"),
}
OUT = REPO / "gallery" / "out"
# A rendered pixel that gathers less than this share of a source pixel counts as a hole.
HOLE_COVERAGE = 0.5


def load(path: Path, long_side: int) -> torch.Tensor:
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        return torch.from_numpy(np.asarray(im, dtype=np.float32).copy() / 255).permute(2, 0, 1).unsqueeze(0)


def spectrum_correlation(volume) -> float | None:
    """Log-amplitude correlation of bins 1..15 with the measured spectrum; None where nothing moves."""
    amplitude = volume.band_amplitude()[0, 1:16]
    if float(amplitude.min()) <= 1e-9:
        return None
    natural = torch.tensor(natural_motion_spectrum()["rms_per_bin"][1:16]).log()
    return round(float(torch.corrcoef(torch.stack([amplitude.log(), natural]))[0, 1]), 4)


def holes(image: torch.Tensor, motion: MotionTexture) -> tuple[float, float]:
    """Share of pixels that no source pixel covers (over all frames) and the widest hole (pixels).

    Width counts the 3x3 erosions a hole survives (2n - 1), so a long one-pixel sliver along the picture's
    border (pixels sliding inwards) counts as 1 wide, as it looks.
    """
    metric = importance_metric(motion)
    uncovered, widest = 0, 0
    for _, fields in motion.chunks(16):
        flow = fields[:, 0]
        _, coverage = softmax_splat(image.expand(flow.shape[0], -1, -1, -1), flow.float(), metric)
        hole = (coverage < HOLE_COVERAGE).float()
        uncovered += int(hole.sum())
        erosions = 0
        while bool(hole.any()):
            erosions += 1
            # Outside the picture counts as hole, so border slivers are measured by their own width.
            hole = -F.max_pool2d(-F.pad(hole, (1, 1, 1, 1), value=1.0), 3, stride=1)
        widest = max(widest, 2 * erosions - 1)
    return uncovered / (motion.frame_count * motion.height * motion.width), widest


def straight_edges(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels on strong, straight edges [h, w] bool and the edge tangent there [2, h, w]."""
    lum = imageops.gaussian_blur(imageops.luminance(image), 1.0)
    gx, gy = imageops.gradients(lum)
    jxx, jxy, jyy = (imageops.gaussian_blur(v, 3.0) for v in (gx * gx, gx * gy, gy * gy))
    coherence = torch.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy + 1e-8)
    magnitude = (gx * gx + gy * gy).sqrt()
    strong = magnitude > torch.quantile(magnitude.flatten(), 0.95).clamp(min=0.02)
    theta = 0.5 * torch.atan2(2 * jxy, jxx - jyy)
    tangent = torch.cat([-torch.sin(theta), torch.cos(theta)], dim=1)[0]
    return (strong & (coherence > 0.8))[0, 0], tangent


def tearing(image: torch.Tensor, motion: MotionTexture) -> float:
    """99th percentile over straight-edge pixels and frames of |d(p + t) - d(p)| (pixels), t the unit tangent.

    Along an intact straight edge neighbours move together; values near 1 mean the edge breaks apart.
    """
    edge, tangent = straight_edges(image)
    if not bool(edge.any()):
        return 0.0
    h, w = edge.shape
    ys, xs = torch.nonzero(edge, as_tuple=True)
    tx, ty = tangent[0, ys, xs], tangent[1, ys, xs]
    grid = torch.stack([(xs + tx) / (w - 1) * 2 - 1, (ys + ty) / (h - 1) * 2 - 1], dim=-1).view(1, 1, -1, 2)
    strains = []
    for _, fields in motion.chunks(16):
        flow = fields[:, 0].float()
        here = flow[:, :, ys, xs]
        there = F.grid_sample(flow, grid.expand(flow.shape[0], -1, -1, -1), align_corners=True)[:, :, 0]
        strains.append((there - here).norm(dim=1).flatten())
    return float(torch.quantile(torch.cat(strains), 0.99))


def tile(image: torch.Tensor, volume, label: str, scale_px: float) -> Image.Image:
    """The picture darkened, with motion amplitude (time-RMS displacement) in warm colours on top."""
    heat = (volume.rms_displacement()[0] / scale_px).clamp(0, 1).numpy()
    base = image[0].permute(1, 2, 0).numpy() * 0.45
    colour = np.stack([heat, heat ** 2, heat ** 4 * 0.3], axis=-1)
    picture = Image.fromarray((np.clip(base + colour, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    draw.rectangle([0, 0, 8 + 7 * len(label), 14], fill=(0, 0, 0))
    draw.text((4, 2), label, fill=(255, 255, 255))
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=384, help="long side of the pictures (pixels)")
    parser.add_argument("--frames", type=int, default=60, help="frames per loop (30 fps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print all figures as one JSON object last")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict] = {}
    rows = []
    for still, (path, suited) in STILLS.items():
        image = load(path, args.size)
        tiles = [Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))]
        for preset in PRESETS:
            started = time.perf_counter()
            volume = ProceduralPrior(preset=preset).predict(image, seed=args.seed)
            predict_s = time.perf_counter() - started
            motion = MotionTexture.from_volume(volume, args.frames, 30.0, loop=True)
            fraction, widest = holes(image, motion)
            figures[f"{still}/{preset}"] = {
                "spectrum_log_corr": spectrum_correlation(volume),
                "mean_amplitude_px": round(float(volume.band_amplitude()[0, 1:].sum()), 3),
                "hole_fraction": round(fraction, 6), "widest_hole_px": widest,
                "edge_tearing_px": round(tearing(image, motion), 4), "predict_s": round(predict_s, 3)}
            tiles.append(tile(image, volume, preset, scale_px=1.5 * args.size / 384))
            if preset in ("auto", suited):
                frames = render_frames(SplatRenderer(), image, motion)[0]
                write_animation(frames, OUT / f"{still}_{preset.replace(' ', '_')}.webp", fps=30.0, quality=85)
            print(f"{still:14s} {preset:15s} " + " ".join(f"{k}={v}" for k, v in figures[f'{still}/{preset}'].items()),
                  flush=True)
        rows.append(tiles)
    tw, th = rows[0][0].size
    sheet = Image.new("RGB", (tw * len(rows[0]), sum(r[0].size[1] for r in rows)), (0, 0, 0))
    y = 0
    for row in rows:
        for i, picture in enumerate(row):
            sheet.paste(picture, (i * tw, y))
        y += row[0].size[1]
    sheet.save(OUT / "contact_sheet.png")
    print(f"wrote {OUT / 'contact_sheet.png'} and {len(list(OUT.glob('*.webp')))} WebPs")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
