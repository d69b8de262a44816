"""Command line: python -m gid_engine animate PICTURE -o OUT.mp4 (same pipeline as the shipped workflow);
`poke` pulls a point and lets go (Interactive Dynamics); `motion` measures a video's motion (Video to Spectral Volume)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch.nn.functional as F

from . import checks, devices
from .loops import encode
from .loops.loop import SeamMeter
from .loops.media import read_image, read_mask
from .pipeline import AnimateOptions, animate_chunks
from .render.learned import load_renderer
from .render.renderer import TEMPERATURE
from .dynamics import cli as dynamics_cli
from .sources import cli as motion_cli
from .sources.base import BUILTIN_SOURCES, SavedVolumeSource, builtin_source
from .sources.prior import DEFAULT_PRESET, PRESETS
from .spectral.volume import SpectralVolume


def animate_command(args, parser) -> int:
    for name, value in (("frames", args.frames), ("fps", args.fps), ("speed", args.speed), ("intensity", args.intensity)):
        if value <= 0 and not (name in ("speed", "intensity") and value == 0):
            parser.error(f"--{name} must be positive, got {value}")
    try:
        encode.format_of(args.output)
        encode.quality_setting("mp4", args.quality)
    except ValueError as err:
        parser.error(f"unsupported animation format or quality: {err}")
    try:
        temperature = TEMPERATURE.check("--temperature", args.temperature)
    except ValueError as err:
        parser.error(str(err))
    source = motion_source(args, parser)
    image = read_image(args.picture)
    if args.size is not None and tuple(image.shape[1:3]) != args.size:
        image = F.interpolate(image.permute(0, 3, 1, 2), size=args.size, mode="bilinear", align_corners=False,
                              antialias=True).clamp(0, 1).permute(0, 2, 3, 1)
    mask = read_mask(args.mask, size=tuple(image.shape[1:3])) if args.mask else None
    options = AnimateOptions(frames=args.frames, fps=args.fps, seed=args.seed, intensity=args.intensity,
                             speed=args.speed, temperature=temperature, source=args.source,
                             start_on_picture=args.start_on_picture)
    device = devices.resolve(args.device)
    try:
        renderer = load_renderer(args.renderer, device=device) if args.renderer else None
    except (ValueError, OSError) as err:
        parser.error(f"--renderer: {err}")
    started = time.perf_counter()
    seam = SeamMeter()
    # Rendered and encoded chunk by chunk: memory does not grow with the number of frames.
    with encode.open_loop_writer(args.output, args.fps, quality=args.quality) as writer:
        for chunk in animate_chunks(image, options, mask=mask, source=source, device=device, renderer=renderer):
            writer.write(chunk)
            seam.add(chunk)
            print(f"\rrendering and encoding {writer.frames_written}/{args.frames}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    h, w = writer.size
    print(f"wrote {writer.path} ({writer.frames_written} frames, {w}x{h}, {args.fps:g} fps, "
          f"seam ratio {seam.ratio():.2f}, {time.perf_counter() - started:.1f} s)")
    return 0


def motion_source(args, parser):
    """The built-in source with its --preset, or a saved volume (--volume) replayed on the picture."""
    try:
        if args.volume:
            if not Path(args.volume).is_file():
                raise ValueError(f"no such file {args.volume}")
            source = SavedVolumeSource(SpectralVolume.load(args.volume), Path(args.volume).name)
        else:
            source = builtin_source(args.source)
    except ValueError as err:
        parser.error(f"--volume: {err}")
    try:
        return source.with_options(preset=args.preset)
    except ValueError as err:  # the source's own words, which name the option: name the flag instead
        parser.error(f"--{err}")


def main(argv: list[str] | None = None) -> int:
    defaults = AnimateOptions()
    parser = argparse.ArgumentParser(prog="python -m gid_engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("animate", help="turn a still picture into a seamless looping animation")
    p.add_argument("picture")
    p.add_argument("-o", "--output", required=True, help="output file: .mp4, .webm, .webp or .gif")
    p.add_argument("--frames", type=int, default=defaults.frames, help="frames in one loop")
    p.add_argument("--fps", type=float, default=defaults.fps)
    p.add_argument("--quality", type=int, default=encode.DEFAULT_QUALITY,
                   help="0..100, the Save Loop node's quality (the default keeps the loop seamless)")
    p.add_argument("--size", type=checks.frame_size, help="resize the picture first, WIDTHxHEIGHT (e.g. 1024x576)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--intensity", type=float, default=defaults.intensity, help="motion amplitude multiplier")
    p.add_argument("--speed", type=float, default=defaults.speed, help="time scale (0.5 = slow motion)")
    p.add_argument("--mask", help="picture of where motion is allowed (white = moves)")
    p.add_argument("--start-on-picture", action="store_true", help="make frame 0 exactly the input picture")
    p.add_argument("--source", default=defaults.source, choices=list(BUILTIN_SOURCES))
    devices.add_argument(p)
    p.add_argument("--renderer", help="learned renderer checkpoint (gid.renderer .safetensors; default: training-free)")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS),
                   help="motion character of the built-in prior: " + "; ".join(
                       f"{name}: {preset.description}" for name, preset in PRESETS.items()))
    p.add_argument("--volume", help="replay a saved spectral volume (.safetensors from Save Spectral Volume or "
                                    "`python -m gid_engine motion`) on the picture instead of predicting one")
    p.add_argument("--temperature", type=float, default=defaults.temperature,
                   help=f"how strongly faster pixels win where pixels overlap ({TEMPERATURE.minimum:g}.."
                        f"{TEMPERATURE.maximum:g}, as Softmax Splat Render's)")
    dynamics_cli.register(sub)
    motion_cli.register(sub)
    args = parser.parse_args(argv)
    if args.command == "poke":
        return dynamics_cli.run(args)
    if args.command == "motion":
        return motion_cli.run(args)
    if args.command == "animate":
        return animate_command(args, parser)
    return 2


if __name__ == "__main__":
    sys.exit(main())
