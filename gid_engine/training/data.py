"""Training pairs from a folder of videos: python -m gid_engine.data VIDEOS_DIR OUT_DIR --size 256x160

Each clip is centre-cropped to the target aspect, its motion measured at the target size, resampled in time
to --fps, and cut into windows of --period frames (the paper: 150 frames at 30 fps, a start every 10th
frame). A window becomes one pair (its first frame + spectral volume, format in gid_engine.training.dataset) unless a
filter drops it: camera motion, unreliable flow, or no motion. What was kept and why the rest was dropped is
printed and written to the manifest.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from .dataset import write_manifest, write_pair
from ..loops.media import read_video
from ..sources.video import VideoMotionOptions, extract_motion

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".webp", ".gif"}


def parse_size(text: str) -> tuple[int, int]:
    """'256x160' -> (height 160, width 256)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 256x160 (width x height), got {text!r}") from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"--size must be at least 8x8, got {text!r}")
    return height, width


def crop_resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[T, H, W, 3] -> centre crop to the target aspect, then resize (antialiased) to height x width."""
    t, h, w, _ = frames.shape
    if w * height > h * width:
        crop = round(h * width / height)
        frames = frames[:, :, (w - crop) // 2:(w - crop) // 2 + crop]
    else:
        crop = round(w * height / width)
        frames = frames[:, (h - crop) // 2:(h - crop) // 2 + crop]
    x = frames.permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.permute(0, 2, 3, 1).clamp(0, 1)


def window_starts(frame_count: int, clip_fps: float, fps: float, period: int, stride: int) -> list[int]:
    """Source-frame indices where a window of `period` frames at `fps` fits in the clip."""
    span = (period - 1) * clip_fps / fps  # source frames a window covers after its first
    last = frame_count - 1 - span
    return list(range(0, int(last) + 1, stride)) if last >= 0 else []


def build(videos: list[Path], out: Path, *, size: tuple[int, int], fps: float, period: int, stride: int,
          num_bins: int, max_camera_px: float, min_reliable: float, min_motion_px: float,
          log=print) -> tuple[list[dict], list[dict]]:
    height, width = size
    out.mkdir(parents=True, exist_ok=True)
    samples: list[dict] = []
    dropped: list[dict] = []
    for path in videos:
        try:
            frames, clip_fps = read_video(path)
        except (ValueError, OSError) as err:
            dropped.append({"source": path.name, "reason": f"unreadable: {err}"})
            continue
        frames = crop_resize(frames, height, width)
        starts = window_starts(frames.shape[0], clip_fps, fps, period, stride or max(1, round(period * clip_fps / fps)))
        if not starts:
            dropped.append({"source": path.name, "reason": f"too short: {frames.shape[0] / clip_fps:.2f} s, a window "
                                                          f"needs {(period - 1) / fps:.2f} s"})
            continue
        for start in starts:
            source = f"{path.name}@{start}"
            end = start + int((period - 1) * clip_fps / fps) + 2
            options = VideoMotionOptions(num_bins=num_bins, reference=0, max_size=0, camera="remove (homography)",
                                         period=period, resample_fps=fps)
            try:
                motion = extract_motion(frames[start:end], clip_fps, options)
            except ValueError as err:
                dropped.append({"source": source, "reason": str(err)})
                continue
            report = motion.report
            amplitude = float(motion.volume.band_amplitude()[0, 1:].sum())
            reason = None
            if report["camera_px_max"] is None or not report["camera_px_max"] <= max_camera_px:
                reason = f"camera motion {report['camera_px_max']} px > {max_camera_px} px"
            elif report["reliable_share"] < min_reliable:
                reason = f"unreliable flow: {report['reliable_share']:.0%} of samples reliable < {min_reliable:.0%}"
            elif amplitude < min_motion_px:
                reason = f"no motion: {amplitude:.3f} px < {min_motion_px} px"
            if reason:
                dropped.append({"source": source, "reason": reason})
                continue
            name = f"{len(samples):06d}.safetensors"
            write_pair(out / name, motion.reference_image.permute(2, 0, 1), motion.volume, source=source)
            samples.append({"file": name, "source": source, "camera_px_max": report["camera_px_max"],
                            "reliable_share": report["reliable_share"], "motion_px": round(amplitude, 4)})
        log(f"{path.name}: {sum(s['source'].startswith(path.name + '@') for s in samples)} kept")
    write_manifest(out, samples, dropped, height=height, width=width, num_bins=num_bins, fps=fps, period=period)
    return samples, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid_engine.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", type=Path, help="folder of clips (searched recursively)")
    parser.add_argument("out", type=Path, help="dataset folder to write")
    parser.add_argument("--size", type=parse_size, default=(160, 256), help="WIDTHxHEIGHT of the pairs (256x160)")
    parser.add_argument("--fps", type=float, default=30.0, help="common frame rate of the motion (30)")
    parser.add_argument("--period", type=int, default=150, help="frames per window at --fps (150)")
    parser.add_argument("--stride", type=int, default=0,
                        help="source frames between window starts (0 = windows do not overlap; the paper: 10)")
    parser.add_argument("--bins", type=int, default=16, help="frequency bins kept (16)")
    parser.add_argument("--max-camera-px", type=float, default=1.0,
                        help="drop windows whose camera (background) moves more than this many pixels (1.0)")
    parser.add_argument("--min-reliable", type=float, default=0.7,
                        help="drop windows where less than this share of flow samples is reliable (0.7)")
    parser.add_argument("--min-motion-px", type=float, default=0.02,
                        help="drop windows whose total AC motion amplitude is below this (0.02 px)")
    args = parser.parse_args(argv)
    if not args.videos.is_dir():
        parser.error(f"{args.videos} is not a folder")
    if args.fps <= 0 or args.period <= 2 * (args.bins - 1) or args.bins < 1 or args.stride < 0:
        parser.error("--fps must be positive, --bins at least 1, --period more than 2*(bins-1), --stride >= 0")
    videos = sorted(p for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        parser.error(f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) under {args.videos}")
    samples, dropped = build(videos, args.out, size=args.size, fps=args.fps, period=args.period, stride=args.stride,
                             num_bins=args.bins, max_camera_px=args.max_camera_px, min_reliable=args.min_reliable,
                             min_motion_px=args.min_motion_px)
    print(f"kept {len(samples)} pairs from {len(videos)} clips, dropped {len(dropped)}:")
    for item in dropped:
        print(f"  {item['source']}: {item['reason']}")
    print(f"wrote {args.out / 'manifest.json'}")
    return 0
