"""Do Motion Tracks' tracks follow the rendered motion? Measured on samples/dandelion.jpg.

    .venv/bin/python benchmarks/tracks_follow_render.py [--size 384] [--frames 30] [--out DIR] [--media FILE]

Renders the built-in prior's loop of the sample with the training-free renderer, samples tracks at textured moving
points (gid_engine.spectral.tracks, what the node runs) and measures them against the rendered frames two ways:
- Lucas-Kanade (OpenCV, 7x7 window) from the picture to every rendered frame, against "no motion at all";
- a coordinate render: the renderer draws a picture whose colours are its own pixel coordinates, and the colour
  at a track's position must name the track's starting point.
Writes OUT/tracks_contact_sheet.png (six frames of the window that moves most, 8x enlarged, every track in it drawn:
cross = now, line = the last 8 frames) and, with --media, the same overlay 3x as an animated WebP at 15 fps (the node's help
page shows it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gid_engine.loops.media import read_image  # noqa: E402
from gid_engine.render.renderer import SplatRenderer, render_frames  # noqa: E402
from gid_engine.sources.prior import ProceduralPrior  # noqa: E402
from gid_engine.spectral import tracks  # noqa: E402
from gid_engine.spectral.motion import MotionTexture  # noqa: E402

COLOURS = [(255, 80, 80), (80, 220, 255), (255, 220, 60), (120, 255, 120), (255, 120, 255)]


def draw(frame: np.ndarray, path: np.ndarray, t: int, trail: int = 8, scale: int = 2,
         resample=Image.NEAREST) -> Image.Image:
    """The frame enlarged `scale` times, each track's last `trail` positions as a line and a cross where it is now."""
    im = Image.fromarray(frame).resize((frame.shape[1] * scale, frame.shape[0] * scale), resample)
    pen = ImageDraw.Draw(im)
    for n in range(path.shape[1]):
        colour = COLOURS[n % len(COLOURS)]
        points = [tuple((p + 0.5) * scale) for p in path[max(0, t - trail):t + 1, n]]
        if len(points) > 1:
            pen.line(points, fill=colour, width=max(1, scale // 3))
        x, y = points[-1]
        arm = 1.5 * scale
        pen.line((x - arm, y, x + arm, y), fill=colour, width=1)
        pen.line((x, y - arm, x, y + arm), fill=colour, width=1)
    return im


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=384, help="long side of the picture (pixels)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out"), help="folder of the contact sheet")
    parser.add_argument("--media", help="also write the overlay as an animated WebP here")
    args = parser.parse_args()
    image = read_image(REPO / "samples" / "dandelion.jpg")
    h0, w0 = image.shape[1:3]
    h, w = round(h0 * args.size / max(h0, w0)), round(w0 * args.size / max(h0, w0))
    picture = F.interpolate(image.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", antialias=True,
                            align_corners=False).clamp(0, 1)
    volume = ProceduralPrior().predict(picture, seed=0, intensity=args.intensity)
    motion = MotionTexture.from_volume(volume, args.frames, 30.0, loop=True, calm_start=True)
    frames = (render_frames(SplatRenderer(), picture, motion)[0].numpy() * 255).round().astype(np.uint8)

    gray0 = cv2.cvtColor((picture[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)
    texture = cv2.cornerMinEigenVal(gray0, 7)
    moving = motion.mean_magnitude()[0, 0].numpy()
    chosen = (texture > np.percentile(texture, 90)) & (moving > 0.5)
    points = tracks.mask_points(torch.from_numpy(chosen.astype(np.float32)), 300)
    path, visible = tracks.sample_tracks(motion, points, h, w)
    start = points.numpy().astype(np.float32).reshape(-1, 1, 2)
    errors, static = [], []
    for t in range(args.frames):
        gray = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)
        seen, status, _ = cv2.calcOpticalFlowPyrLK(gray0, gray, start, None, winSize=(7, 7), maxLevel=2)
        ok = status.ravel() == 1
        errors.append(np.linalg.norm(seen.reshape(-1, 2) - path[t].numpy(), axis=1)[ok])
        static.append(np.linalg.norm(seen.reshape(-1, 2) - points.numpy(), axis=1)[ok])
    error, still = np.concatenate(errors), np.concatenate(static)
    travel = (path - points[None].float()).norm(dim=-1)
    print(f"{len(points)} tracks x {args.frames} frames at {w}x{h}; travel median {float(travel.median()):.2f} px, "
          f"max {float(travel.max()):.2f} px")
    print(f"Lucas-Kanade on the rendered frames: track error median {np.median(error):.3f} px, 90th percentile "
          f"{np.percentile(error, 90):.3f} px ({error.size} samples); assuming no motion: median "
          f"{np.median(still):.3f} px")

    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    coordinates = torch.stack([x / w, y / h, torch.zeros_like(x)])[None]
    rendered = render_frames(SplatRenderer(), coordinates, motion)[0]
    grid = (torch.stack([path[..., 0] / (w - 1), path[..., 1] / (h - 1)], dim=-1) * 2 - 1).unsqueeze(1)
    found = F.grid_sample(rendered.permute(0, 3, 1, 2), grid, align_corners=True)[:, :2, 0]
    source = torch.stack([found[:, 0] * w, found[:, 1] * h], dim=-1)
    landing = (source - points[None].float()).norm(dim=-1)[visible]
    print(f"coordinate render: track error median {float(landing.median()):.3f} px, 90th percentile "
          f"{float(landing.quantile(0.9)):.3f} px")

    # The motion is a pixel or two: the sheet zooms into the 96x54 window that moves most, with every track in it.
    weight = cv2.blur(moving, (96, 54))
    cy, cx = np.unravel_index(np.argmax(weight), weight.shape)
    x0, y0 = int(np.clip(cx - 48, 0, w - 96)), int(np.clip(cy - 27, 0, h - 54))
    inside = ((points[:, 0] >= x0) & (points[:, 0] < x0 + 96) & (points[:, 1] >= y0) & (points[:, 1] < y0 + 54))
    # the 12 tracks there that travel furthest, so each can be followed by eye
    far = torch.where(inside, travel.max(dim=0).values, torch.zeros(())).argsort(descending=True)[:12]
    far = far[inside[far]]
    shown = path.numpy()[:, far.numpy()] - np.array([x0, y0], dtype=np.float32)
    crops = frames[:, y0:y0 + 54, x0:x0 + 96]
    picks = np.linspace(0, args.frames - 1, 6).round().astype(int)
    tiles = [draw(crops[t], shown, int(t), scale=8) for t in picks]
    sheet = Image.new("RGB", (tiles[0].width * 3, tiles[0].height * 2))
    for i, tile in enumerate(tiles):
        ImageDraw.Draw(tile).text((6, 4), f"frame {picks[i]} (x{8}, window at {x0},{y0})", fill=(255, 255, 255))
        sheet.paste(tile, ((i % 3) * tile.width, (i // 3) * tile.height))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sheet.save(out / "tracks_contact_sheet.png")
    print(f"wrote {out / 'tracks_contact_sheet.png'}")
    if args.media:
        overlay = [draw(crops[t], shown, t, scale=3, resample=Image.BICUBIC) for t in range(args.frames)]
        # lossy WebP: an illustration, a tenth of the size of Save Loop's near-lossless one
        overlay[0].save(args.media, save_all=True, append_images=overlay[1:], duration=round(1000 / 15), loop=0,
                        quality=50, method=6)
        print(f"wrote {args.media} ({Path(args.media).stat().st_size / 1024:.0f} KB)")

if __name__ == "__main__":
    main()
