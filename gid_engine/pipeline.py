"""The whole picture-to-loop pipeline as one call (what the shipped workflow does, without ComfyUI)."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch

from .devices import default_device
from .loops.loop import make_loop
from .spectral.motion import MotionTexture
from .render.renderer import DEFAULT_TEMPERATURE, Renderer, SplatRenderer, render_chunks, render_frames
from .sources.base import DEFAULT_SOURCE, MotionSource, builtin_source


@dataclasses.dataclass
class AnimateOptions:
    """Defaults shared by the CLI and workflows/animate_still.json."""

    frames: int = 120
    fps: float = 30.0
    seed: int = 0
    intensity: float = 1.0
    speed: float = 1.0
    temperature: float = DEFAULT_TEMPERATURE
    source: str = DEFAULT_SOURCE
    start_on_picture: bool = False


def _prepare(image, options, mask, source, device):
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[-1] != 3:
        raise ValueError(f"image must be [1, H, W, 3], got {tuple(image.shape)}")
    source = source or builtin_source(options.source)
    picture = image.permute(0, 3, 1, 2).to(device)
    mask4 = None if mask is None else mask.to(device).unsqueeze(1)
    volume = source.predict(picture, seed=options.seed, mask=mask4, intensity=options.intensity)
    motion = MotionTexture.from_volume(volume, options.frames, options.fps, speed=options.speed, loop=True,
                                       anchored=options.start_on_picture, calm_start=True)
    return picture, volume, motion


def animate(image: torch.Tensor, options: AnimateOptions | None = None, mask: torch.Tensor | None = None,
            source: MotionSource | None = None, device: torch.device | None = None, progress=None,
            renderer: Renderer | None = None) -> tuple[torch.Tensor, dict]:
    """image [1, H, W, 3] in 0..1 (mask [1, H, W]) -> looping frames [N, H, W, 3] on the CPU and a report.
    renderer: e.g. a learned one (gid_engine.render.learned.load_renderer); default the training-free SplatRenderer."""
    options = options or AnimateOptions()
    picture, volume, motion = _prepare(image, options, mask, source, device or default_device())
    frames = render_frames(renderer or SplatRenderer(), picture, motion, temperature=options.temperature, progress=progress)
    looped, report = make_loop(frames[0], crossfade=0)
    report["band_amplitude_px"] = [round(float(a), 4) for a in volume.band_amplitude()[0]]
    return looped, report


def animate_chunks(image: torch.Tensor, options: AnimateOptions | None = None, mask: torch.Tensor | None = None,
                   source: MotionSource | None = None, device: torch.device | None = None,
                   renderer: Renderer | None = None) -> Iterator[torch.Tensor]:
    """The frames animate() returns, as consecutive chunks [n, H, W, 3] on the CPU, rendered one chunk at a time,
    so a caller that encodes each chunk (gid_engine.loops.encode) holds one chunk, not the whole clip."""
    options = options or AnimateOptions()
    picture, _, motion = _prepare(image, options, mask, source, device or default_device())
    for _, frames in render_chunks(renderer or SplatRenderer(), picture, motion, temperature=options.temperature):
        yield frames[0]
