"""Training pairs from a folder of videos: python -m gid_engine.data VIDEOS_DIR OUT_DIR --size 256x160

Each clip is centre-cropped to the target aspect, its motion measured at the target size, resampled in time
to --fps, and cut into windows of --period frames (the paper: 150 frames at 30 fps, a start every 10th
frame). A window becomes one pair (its first frame + spectral volume, format in gid_engine.training.dataset) unless a
filter drops it: camera motion, unreliable flow, or no motion. What was kept and why the rest was dropped is
printed and written to the manifest. Every pair also keeps --frames-per-pair later frames of its window (the
renderer's training targets).

--workers N processes N clips at a time (separate processes). Each clip's pairs go to their own shard folder
pairs/<2 hex>/<clip>-<hash>/ with a clip.json written when the clip is done: an interrupted build run again
skips the clips already done, and the manifest lists the samples in the clips' sorted order, so the dataset
is the same whatever --workers.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import checks
from .dataset import write_manifest, write_pair
from ..loops.media import read_video
from ..sources.video import VideoMotionOptions, extract_motion

DONE_FILE = "clip.json"
DEFAULT_FRAMES_PER_PAIR = 4
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".webp", ".gif"}


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


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    size: tuple[int, int]  # (height, width)
    fps: float
    period: int
    stride: int
    num_bins: int
    max_camera_px: float
    min_reliable: float
    min_motion_px: float
    frames_per_pair: int = DEFAULT_FRAMES_PER_PAIR


def clip_folder(root: Path, videos_dir: Path, video: Path) -> Path:
    """Where one clip's pairs go: pairs/<2 hex>/<name>-<hash>/, so no folder holds more than a few hundred entries
    however many clips there are, and the same clip always lands in the same place (resume, any --workers)."""
    relative = video.relative_to(videos_dir).as_posix()
    digest = hashlib.sha1(relative.encode()).hexdigest()
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in video.stem)[:40]
    return root / "pairs" / digest[:2] / f"{stem}-{digest[:10]}"


def target_frame_times(period: int, count: int) -> list[float]:
    """Evenly spread times in the window's first half (frames at --fps, after 0) whose frames the renderer learns
    to draw. K bins reproduce a window's motion worst at its ends (they form a periodic series, so frame T-1
    comes out close to frame 0): the later half would teach the renderer wrong flows."""
    return [(j + 1) * (period // 2) / count for j in range(count)]


def process_clip(path: Path, folder: Path, root: Path, opt: BuildOptions) -> dict:
    """One clip -> its pairs in `folder` and {"samples", "dropped"}; clip.json, written last, marks it done."""
    height, width = opt.size
    samples: list[dict] = []
    dropped: list[dict] = []
    try:
        frames, clip_fps = read_video(path)
    except (ValueError, OSError) as err:
        frames, clip_fps = None, 0.0
        dropped.append({"source": path.name, "reason": f"unreadable: {err}"})
    starts = []
    if frames is not None:
        frames = crop_resize(frames, height, width)
        stride = opt.stride or max(1, round(opt.period * clip_fps / opt.fps))
        starts = window_starts(frames.shape[0], clip_fps, opt.fps, opt.period, stride)
        if not starts:
            dropped.append({"source": path.name, "reason": f"too short: {frames.shape[0] / clip_fps:.2f} s, a window "
                                                          f"needs {(opt.period - 1) / opt.fps:.2f} s"})
    folder.mkdir(parents=True, exist_ok=True)
    for window, start in enumerate(starts):
        source = f"{path.name}@{start}"
        end = start + int((opt.period - 1) * clip_fps / opt.fps) + 2
        options = VideoMotionOptions(num_bins=opt.num_bins, reference=0, max_size=0, camera="remove (homography)",
                                     period=opt.period, resample_fps=opt.fps)
        try:
            motion = extract_motion(frames[start:end], clip_fps, options)
        except ValueError as err:
            dropped.append({"source": source, "reason": str(err)})
            continue
        report = motion.report
        amplitude = float(motion.volume.band_amplitude()[0, 1:].sum())
        reason = None
        if report["camera_px_max"] is None or not report["camera_px_max"] <= opt.max_camera_px:
            reason = f"camera motion {report['camera_px_max']} px > {opt.max_camera_px} px"
        elif report["reliable_share"] < opt.min_reliable:
            reason = f"unreliable flow: {report['reliable_share']:.0%} of samples reliable < {opt.min_reliable:.0%}"
        elif amplitude < opt.min_motion_px:
            reason = f"no motion: {amplitude:.3f} px < {opt.min_motion_px} px"
        if reason:
            dropped.append({"source": source, "reason": reason})
            continue
        # Target frames: the source frame nearest each time; its exact time (in --fps frames) goes with it.
        times = target_frame_times(opt.period, opt.frames_per_pair)
        offsets = [min(round(t * clip_fps / opt.fps), end - start - 1) for t in times]
        targets = frames[[start + o for o in offsets]].permute(0, 3, 1, 2) if offsets else None
        file = folder / f"{window:04d}.safetensors"
        write_pair(file, motion.reference_image.permute(2, 0, 1), motion.volume, source=source, frames=targets,
                   frame_times=[o * opt.fps / clip_fps for o in offsets])
        samples.append({"file": file.relative_to(root).as_posix(), "source": source,
                        "camera_px_max": report["camera_px_max"], "reliable_share": report["reliable_share"],
                        "motion_px": round(amplitude, 4)})
    result = {"video": path.name, "samples": samples, "dropped": dropped}
    tmp = folder / (DONE_FILE + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(folder / DONE_FILE)
    return result


def _init_worker(threads: int) -> None:
    # Each worker process gets its share of the cores; more threads than cores makes all of them crawl.
    torch.set_num_threads(threads)
    import cv2

    cv2.setNumThreads(threads)


def build(videos: list[Path], out: Path, videos_dir: Path, opt: BuildOptions, workers: int = 1,
          log=print) -> tuple[list[dict], list[dict]]:
    """Process every clip not done yet (workers in parallel), then write the manifest in the clips' sorted order,
    so the dataset is the same whatever --workers and however often the build was interrupted."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[Path, dict] = {}
    todo = []
    for video in videos:
        done = clip_folder(out, videos_dir, video) / DONE_FILE
        if done.is_file():
            results[video] = json.loads(done.read_text())
        else:
            todo.append(video)
    if results:
        log(f"{len(results)} clips already done, {len(todo)} to go")

    def finished(video: Path, result: dict) -> None:
        results[video] = result
        log(f"{video.name}: {len(result['samples'])} kept ({len(results)}/{len(videos)})")

    if workers <= 1 or len(todo) <= 1:
        for video in todo:
            finished(video, process_clip(video, clip_folder(out, videos_dir, video), out, opt))
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")  # no fork of a process with torch/OpenMP threads
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
            jobs = {pool.submit(process_clip, v, clip_folder(out, videos_dir, v), out, opt): v for v in todo}
            for job in as_completed(jobs):
                finished(jobs[job], job.result())
    samples = [s for v in videos for s in results[v]["samples"]]
    dropped = [d for v in videos for d in results[v]["dropped"]]
    height, width = opt.size
    write_manifest(out, samples, dropped, height=height, width=width, num_bins=opt.num_bins, fps=opt.fps,
                   period=opt.period, frames_per_pair=opt.frames_per_pair)
    return samples, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid_engine.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", type=Path, help="folder of clips (searched recursively)")
    parser.add_argument("out", type=Path, help="dataset folder to write")
    parser.add_argument("--size", type=checks.frame_size, default=(160, 256), help="WIDTHxHEIGHT of the pairs (256x160)")
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
    parser.add_argument("--frames-per-pair", type=int, default=DEFAULT_FRAMES_PER_PAIR,
                        help="later frames of each window kept as renderer training targets "
                             f"({DEFAULT_FRAMES_PER_PAIR})")
    parser.add_argument("--workers", type=int, default=1, help="clips processed in parallel (1)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.frames_per_pair < 0:
        parser.error(f"--workers must be at least 1 (got {args.workers}), --frames-per-pair at least 0 "
                     f"(got {args.frames_per_pair})")
    if not args.videos.is_dir():
        parser.error(f"{args.videos} is not a folder")
    if args.fps <= 0 or args.period <= 2 * (args.bins - 1) or args.bins < 1 or args.stride < 0:
        parser.error("--fps must be positive, --bins at least 1, --period more than 2*(bins-1), --stride >= 0")
    videos = sorted(p for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        parser.error(f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) under {args.videos}")
    opt = BuildOptions(size=args.size, fps=args.fps, period=args.period, stride=args.stride, num_bins=args.bins,
                       max_camera_px=args.max_camera_px, min_reliable=args.min_reliable,
                       min_motion_px=args.min_motion_px, frames_per_pair=args.frames_per_pair)
    samples, dropped = build(videos, args.out, args.videos, opt, workers=args.workers)
    print(f"kept {len(samples)} pairs from {len(videos)} clips, dropped {len(dropped)}:")
    for item in dropped:
        print(f"  {item['source']}: {item['reason']}")
    print(f"wrote {args.out / 'manifest.json'}")
    return 0
