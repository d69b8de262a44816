"""How seamless and how large the written loop files are, measured on the DECODED files.

    python benchmarks/loop_files.py [--sizes 512x288,1024x576] [--frames 90] [--fps 30] [--formats mp4,webm,webp,gif]
                                    [--pictures dandelion,autumn_meadow,...] [--json]

For each picture (the shipped samples and two generated pictures), size and format, the engine's loop (the CLI's
pipeline, default options) is written through gid_engine.loops.encode at its default quality, decoded as a
player would, and measured against the frames before encoding (gid_engine/loops/encode_figures.py):
wrap_ratio (wrap change / median consecutive change), largest_step_ratio (largest / median consecutive change),
psnr_db, still_max_step (largest frame-to-frame change of pixels the motion leaves still) and bytes per second.
Baselines in the same run, on the same frames: what the core savers write (Pillow WebP quality 90 as
SaveAnimatedWEBP; H.264 at x264's default CRF 23 as SaveVideo) and exact lossless WebP at the effort Save
Loop uses (the size reference). yuv420_ceiling_db: PSNR of the frames through 4:2:0 colour alone (no codec),
the most any MP4/WebM (yuv420p) can reach on that picture.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gid_engine.loops import encode  # noqa: E402
from gid_engine.loops.encode_yuv import rgb_to_i420  # noqa: E402
from gid_engine.loops.encode_figures import decode_loop, loop_figures, meets_figures  # noqa: E402
from gid_engine.loops.media import read_image  # noqa: E402
from gid_engine.pipeline import AnimateOptions, animate  # noqa: E402

SHIPPED = {"dandelion": ROOT / "samples" / "dandelion.jpg",
           **{p.stem: p for p in sorted((ROOT / "samples" / "gallery").glob("*.jpg"))}}


def generated_picture(name: str, height: int, width: int) -> torch.Tensor:
    """[1, H, W, 3]: 'meadow' (sky gradient over thin, saturated stalks), 'tiles' (hard-edged colour tiles) or
    'soft' (blurred multi-scale noise in natural colours, photo-like detail)."""
    g = torch.Generator().manual_seed(7)
    if name == "soft":
        from gid_engine.imageops import gaussian_blur

        # Fine detail in brightness, colour only in broad patches: how photographs are (and what 4:2:0 assumes).
        luma = sum(gaussian_blur(torch.rand(1, 1, height, width, generator=g), sigma) * weight
                   for sigma, weight in ((1.0, 0.6), (3.0, 1.5), (12.0, 3.0)))
        tint = gaussian_blur(torch.rand(1, 3, height, width, generator=g), 24.0)
        luma, tint = (luma - luma.mean()) / luma.std(), (tint - tint.mean()) / tint.std()
        base = torch.tensor([0.35, 0.5, 0.3])[:, None, None]
        picture = (base + 0.12 * luma[0] + 0.05 * tint[0] + 0.15 * torch.linspace(1, -1, height)[None, :, None])
        return picture.permute(1, 2, 0).clamp(0, 1)[None]
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)
    if name == "meadow":
        sky = torch.stack([0.45 + 0.3 * y, 0.6 + 0.25 * y, 0.95 - 0.1 * y], -1)
        stalks = torch.rand(width, generator=g)
        phase = torch.sin(x * 400 * stalks.mean()) * 0.5 + 0.5
        grass = torch.stack([0.15 + 0.5 * phase * stalks[None], 0.45 + 0.4 * phase, 0.1 + 0.2 * phase], -1)
        picture = torch.where((y > 0.45 + 0.1 * torch.sin(x * 9))[..., None], grass, sky)
    else:
        cells = torch.rand(8, 14, 3, generator=g)
        picture = cells[(y * 7.999).long(), (x * 13.999).long()]
        picture = picture * (0.85 + 0.15 * torch.sin(x * 60 + y * 40))[..., None]
    return picture.clamp(0, 1)[None]


def picture(name: str, height: int, width: int) -> torch.Tensor:
    if name not in SHIPPED:
        return generated_picture(name, height, width)
    image = read_image(SHIPPED[name]).permute(0, 3, 1, 2)
    return F.interpolate(image, size=(height, width), mode="bilinear", antialias=True).clamp(0, 1).permute(0, 2, 3, 1)


def baseline_files(pixels: np.ndarray, fps: float, folder: Path) -> dict[str, Path]:
    """What the core savers write from the same frames, and exact lossless WebP."""
    import av
    from PIL import Image

    files = {}
    images = [Image.fromarray(p) for p in pixels]
    for name, options in (("core_webp_q90", {"quality": 90, "method": 4}), ("lossless_webp", {"lossless": True, "quality": 25, "method": 1})):
        path = folder / f"{name}.webp"
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, **options)
        files[name] = path
    path = folder / "core_mp4_crf23.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = pixels.shape[2], pixels.shape[1], "yuv420p"
        for p in pixels:
            for packet in stream.encode(av.VideoFrame.from_ndarray(p, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    files["core_mp4_crf23"] = path
    return files


def yuv420_ceiling_db(pixels: np.ndarray) -> float:
    """PSNR of frame 0 through the encoder's 4:2:0 conversion and a player's conversion back, no codec."""
    import av
    from av.video.reformatter import ColorRange, Colorspace

    planes = rgb_to_i420(torch.from_numpy(pixels[:1]))[0]
    back = av.VideoFrame.from_ndarray(planes, format="yuv420p").to_ndarray(
        format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG)
    mse = float(((back.astype(np.float64) - pixels[0]) ** 2).mean())
    return round(10 * np.log10(255 ** 2 / mse), 2) if mse > 0 else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="512x288,1024x576")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--formats", default=",".join(encode.FORMATS))
    parser.add_argument("--pictures", default=",".join([*SHIPPED, "soft", "meadow", "tiles"]))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            for name in args.pictures.split(","):
                frames, _ = animate(picture(name, height, width), AnimateOptions(frames=args.frames, fps=args.fps))
                pixels = encode.to_uint8(frames).numpy()
                ceiling = yuv420_ceiling_db(pixels)
                written = {}
                for format in args.formats.split(","):
                    started = time.perf_counter()
                    written[format] = encode.write_loop(frames, folder / f"loop.{format}", args.fps)
                    written[format] = (written[format], time.perf_counter() - started)
                for label, path in baseline_files(pixels, args.fps, folder).items():
                    written[label] = (path, None)
                for label, (path, seconds) in written.items():
                    figures = loop_figures(decode_loop(path), pixels)
                    row = {"picture": name, "size": size, "format": label, **figures, "yuv420_ceiling_db": ceiling,
                           "bytes_per_second": round(path.stat().st_size * args.fps / args.frames),
                           "encode_s": None if seconds is None else round(seconds, 2)}
                    row["meets_figures"] = meets_figures(figures)
                    rows.append(row)
                    if not args.json:
                        print(f"{size:>9} {name:<14} {label:<15} wrap/med {row['wrap_ratio']:5.2f}  "
                              f"max/med {row['largest_step_ratio']:5.2f}  PSNR {row['psnr_db']:6.2f} dB  "
                              f"(4:2:0 {ceiling:5.2f})  still max {row['still_max_step']:4.0f}  {row['bytes_per_second'] / 1e3:8.0f} kB/s"
                              + ("" if seconds is None else f"  encode {seconds:5.1f} s"), flush=True)
    summary = {}
    for format in [*args.formats.split(","), "core_webp_q90", "core_mp4_crf23", "lossless_webp"]:
        mine = [r for r in rows if r["format"] == format]
        if not mine:
            continue
        summary[format] = {
            "meets_figures_all": all(r["meets_figures"] for r in mine),
            "worst_wrap_ratio": max(r["wrap_ratio"] for r in mine),
            "worst_largest_step_ratio": max(r["largest_step_ratio"] for r in mine),
            "worst_psnr_db": min(r["psnr_db"] for r in mine),
            "worst_still_max_step": max(r["still_max_step"] for r in mine),
            "bytes_per_second_median": {s: float(np.median([r["bytes_per_second"] for r in mine if r["size"] == s]))
                                        for s in args.sizes.split(",")},
        }
        lossless = [r["bytes_per_second"] for r in rows if r["format"] == "lossless_webp"]
        summary[format]["size_vs_lossless_webp"] = round(
            float(np.median([r["bytes_per_second"] for r in mine])) / float(np.median(lossless)), 3)
    if args.json:
        print(json.dumps({"frames": args.frames, "fps": args.fps, "threads": torch.get_num_threads(),
                          "results": rows, "summary": summary}))
    else:
        for format, s in summary.items():
            print(f"{format:<15} all meet: {s['meets_figures_all']!s:5}  worst wrap/med {s['worst_wrap_ratio']:.2f}  "
                  f"worst max/med {s['worst_largest_step_ratio']:.2f}  worst PSNR {s['worst_psnr_db']:.2f} dB  "
                  f"worst still {s['worst_still_max_step']:.0f}  kB/s {s['bytes_per_second_median']}  "
                  f"x lossless WebP size {s['size_vs_lossless_webp']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
