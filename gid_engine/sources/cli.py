"""`python -m gid_engine motion VIDEO -o motion.safetensors`: a clip's motion as a spectral volume file
(what Video to Spectral Volume and Save Spectral Volume do), for `animate --volume` or Load Spectral Volume."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import checks
from ..loops.media import read_video
from ..pipeline import default_device
from .video import AUTO_BINS, AUTO_REFERENCE, CAMERA_MODES, CLIP_FPS, VideoMotionOptions, extract_motion

# The engine's option names (its errors start with them) -> this command's flags.
FLAGS = {"num_bins": "--num-bins", "reference": "--reference-frame", "max_size": "--max-size",
         "camera": "--camera-motion", "period": "--period", "resample_fps": "--resample-fps", "fps": "--fps"}
VOLUME_SUFFIX = ".safetensors"


def register(sub) -> None:
    defaults = VideoMotionOptions()
    p = sub.add_parser("motion", help="measure a video's motion and write it as a spectral volume file",
                       description=__doc__)
    p.add_argument("video", help="the clip: .mp4, .webm, .mov, .avi, or an animated .webp/.gif")
    p.add_argument("-o", "--output", required=True, help="the spectral volume file to write (.safetensors)")
    p.add_argument("--fps", type=float, help="use this frame rate instead of the one the file states")
    p.add_argument("--num-bins", type=int, default=AUTO_BINS,
                   help=f"frequency bins kept; {AUTO_BINS} = as many as the clip supports, up to 16")
    p.add_argument("--reference-frame", type=int, default=AUTO_REFERENCE,
                   help=f"frame the motion is measured from; {AUTO_REFERENCE} = the first frame after a fade-in")
    p.add_argument("--max-size", type=int, default=defaults.max_size,
                   help="long side (pixels) the flow is measured at; 0 = full size")
    p.add_argument("--camera-motion", default=defaults.camera, choices=list(CAMERA_MODES),
                   help="keep the camera's motion, or remove it (for hand-held clips)")
    p.add_argument("--period", type=int, default=defaults.period,
                   help="frames in the FFT window (0 = the whole clip from the reference frame)")
    p.add_argument("--resample-fps", type=float, default=defaults.resample_fps,
                   help="resample the motion in time to this frame rate first (0 = the clip's own)")
    p.add_argument("--max-frames", type=int, default=0, help="read at most this many frames (0 = all)")


def flag_message(err: Exception) -> str:
    """The engine's message with the option's name replaced by the flag that set it."""
    text = str(err)
    for option, flag in FLAGS.items():
        if text.startswith(option + ":"):
            return flag + text[len(option):]
    return text


def run(args) -> int:
    try:
        if Path(args.output).suffix.lower() != VOLUME_SUFFIX:
            raise ValueError(f"--output: {args.output!r} must end in {VOLUME_SUFFIX} (a spectral volume file)")
        max_frames = checks.integer("--max-frames", args.max_frames, minimum=0)
        if args.max_frames == 1:
            raise ValueError("--max-frames: 1 frame shows no motion; allowed: 0 (all) or at least 2")
        if args.fps is not None:
            CLIP_FPS.check("--fps", args.fps)
        options = VideoMotionOptions(num_bins=args.num_bins, reference=args.reference_frame, max_size=args.max_size,
                                     camera=args.camera_motion, period=args.period,
                                     resample_fps=args.resample_fps).checked()
    except ValueError as err:
        print(f"error: {flag_message(err)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        frames, stated_fps = read_video(args.video, max_frames=max_frames)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    fps = args.fps or stated_fps
    if frames.shape[0] < 2:
        print(f"error: {args.video}: a clip needs at least 2 frames to show motion, got {frames.shape[0]}",
              file=sys.stderr)
        return 2

    def progress(done: int, total: int) -> None:
        print(f"\rmeasuring motion {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
        motion = extract_motion(frames, fps, options, device=default_device(), progress=progress)
    except ValueError as err:
        print(file=sys.stderr)
        print(f"error: {flag_message(err)}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    path = motion.volume.save(args.output)
    volume, report = motion.volume, motion.report
    print(f"wrote {path} ({volume.num_bins} bins on a {volume.width}x{volume.height} grid, {report['frames_used']} "
          f"frames at {report['fps']:g} fps from frame {report['reference_frame']}, reliable share "
          f"{report['reliable_share']:.2f}; {time.perf_counter() - started:.1f} s)")
    return 0

