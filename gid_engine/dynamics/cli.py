"""`python -m gid_engine poke PICTURE -o OUT --at X,Y --pull DX,DY`: pull a point, let go, write the ring-down."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import checks, devices
from ..loops import encode
from ..loops.media import read_image, write_animation
from ..render.renderer import SplatRenderer, render_frames
from ..sources.prior import ProceduralPrior
from ..spectral.volume import SpectralVolume
from .actions import Action
from .simulate import DAMPING_MODELS, Controls, simulate


def _pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers separated by a comma, got {text!r}")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers separated by a comma, got {text!r}") from None


def register(sub) -> None:
    defaults = Controls()
    p = sub.add_parser("poke", help="pull a point of a picture, let go, and write how it springs back",
                       description=__doc__)
    p.add_argument("picture")
    p.add_argument("-o", "--output", required=True, help="output file: .webp, .gif or .mp4")
    p.add_argument("--at", type=_pair, required=True, metavar="X,Y",
                   help="the point, as fractions (0..1) of the picture's width and height")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--pull", type=_pair, metavar="DX,DY", help="drag the point by this many pixels, then let go")
    kind.add_argument("--impulse", type=_pair, metavar="VX,VY", help="flick the point at this velocity (pixels/s)")
    p.add_argument("--frames", type=int, default=defaults.frames)
    p.add_argument("--fps", type=float, default=defaults.fps)
    p.add_argument("--seed", type=int, default=0, help="seed of the built-in prior's motion")
    p.add_argument("--damping", type=float, default=defaults.damping, help="damping ratio (0 rings forever, 1 critical)")
    p.add_argument("--damping-model", default=defaults.damping_model, choices=DAMPING_MODELS)
    p.add_argument("--stiffness", type=float, default=defaults.stiffness, help="spring stiffness multiplier")
    p.add_argument("--strength", type=float, default=defaults.strength, help="multiplies the pull or impulse")
    p.add_argument("--volume", help="a saved spectral volume (.safetensors) instead of the built-in prior")
    p.add_argument("--quality", type=int, default=encode.DEFAULT_QUALITY,
                   help="0..100, the Save Loop node's quality (higher = closer to the frames, larger files)")
    devices.add_argument(p)


def run(args) -> int:
    try:
        at = tuple(checks.number(f"--at {axis}", v, minimum=0.0, maximum=1.0) for axis, v in zip("XY", args.at))
        kind, vector = ("pull", args.pull) if args.pull is not None else ("impulse", args.impulse)
        vector = tuple(checks.number(f"--{kind} {axis}", v) for axis, v in zip(("DX", "DY"), vector))
        quality = checks.integer("--quality", args.quality, minimum=0, maximum=100)
        encode.quality_setting(encode.format_of(args.output), quality)
        controls = Controls(frames=args.frames, fps=args.fps, damping=args.damping, damping_model=args.damping_model,
                            stiffness=args.stiffness, strength=args.strength).checked()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    device = devices.resolve(args.device)
    try:
        image = read_image(args.picture)
        picture = image.permute(0, 3, 1, 2).to(device)
        h, w = picture.shape[-2:]
        if args.volume:
            if not Path(args.volume).is_file():
                raise FileNotFoundError(f"--volume: no such file {args.volume}")
            volume = SpectralVolume.load(args.volume, device=device).select(0).resize(h, w)
        else:
            volume = ProceduralPrior().predict(picture, seed=args.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    motion = simulate(volume, [Action(kind, at, vector, 0.0)], controls)

    def progress(done: int, total: int) -> None:
        print(f"\rrendering {done}/{total}", end="", file=sys.stderr, flush=True)

    frames = render_frames(SplatRenderer(), picture, motion, progress=progress)[0]
    print(file=sys.stderr)
    path = write_animation(frames, args.output, controls.fps, quality=quality)
    released = motion.fields(0, 1)[0, 0]
    px, py = min(int(at[0] * w), w - 1), min(int(at[1] * h), h - 1)
    for note in motion.notes:
        print(f"note: {note.replace('actions[0]', f'--{kind}')}", file=sys.stderr)
    print(f"wrote {path} ({frames.shape[0]} frames, {w}x{h}, {controls.fps:g} fps; the point moved "
          f"({float(released[0, py, px]):.1f}, {float(released[1, py, px]):.1f}) px at release; "
          f"{time.perf_counter() - started:.1f} s)")
    return 0
