"""Command line: python -m gid_engine animate PICTURE -o OUT.webp (same pipeline as the shipped workflow)."""
from __future__ import annotations

import argparse
import sys
import time

from .loops.media import read_image, read_mask, write_animation
from .pipeline import AnimateOptions, animate, default_device
from .dynamics import cli as dynamics_cli
from .sources.base import BUILTIN_SOURCES


def main(argv: list[str] | None = None) -> int:
    defaults = AnimateOptions()
    parser = argparse.ArgumentParser(prog="python -m gid_engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("animate", help="turn a still picture into a seamless looping animation")
    p.add_argument("picture")
    p.add_argument("-o", "--output", required=True, help="output file: .webp, .gif or .mp4")
    p.add_argument("--frames", type=int, default=defaults.frames, help="frames in one loop")
    p.add_argument("--fps", type=float, default=defaults.fps)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--intensity", type=float, default=defaults.intensity, help="motion amplitude multiplier")
    p.add_argument("--speed", type=float, default=defaults.speed, help="time scale (0.5 = slow motion)")
    p.add_argument("--mask", help="picture of where motion is allowed (white = moves)")
    p.add_argument("--start-on-picture", action="store_true", help="make frame 0 exactly the input picture")
    p.add_argument("--source", default=defaults.source, choices=list(BUILTIN_SOURCES))
    dynamics_cli.register(sub)
    args = parser.parse_args(argv)
    if args.command == "poke":
        return dynamics_cli.run(args)

    image = read_image(args.picture)
    mask = read_mask(args.mask, size=tuple(image.shape[1:3])) if args.mask else None
    options = AnimateOptions(frames=args.frames, fps=args.fps, seed=args.seed, intensity=args.intensity,
                             speed=args.speed, source=args.source, start_on_picture=args.start_on_picture)
    for name, value in (("frames", args.frames), ("fps", args.fps), ("speed", args.speed), ("intensity", args.intensity)):
        if value <= 0 and not (name in ("speed", "intensity") and value == 0):
            parser.error(f"--{name} must be positive, got {value}")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"\rrendering {done}/{total}", end="", file=sys.stderr, flush=True)

    frames, report = animate(image, options, mask=mask, device=default_device(), progress=progress)
    print(file=sys.stderr)
    path = write_animation(frames, args.output, args.fps)
    print(f"wrote {path} ({frames.shape[0]} frames, {frames.shape[2]}x{frames.shape[1]}, {args.fps:g} fps, "
          f"seam ratio {report['seam_ratio_after']:.2f}, {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
