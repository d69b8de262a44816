"""Renderers: turn a picture and a motion texture into frames.

Every renderer implements `Renderer.render_chunk`; `render_frames` drives any of them over a motion
texture in memory-bounded chunks with progress. The training-free `SplatRenderer` softmax-splats the
picture itself; a learned feature-pyramid renderer plugs into the same interface.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch
import torch.nn.functional as F

from .motion import MotionTexture
from .splat import softmax_splat

Progress = Callable[[int, int], None]

# The depth proxy is in pixels; dividing by the picture's long side (times this reference) makes the
# same temperature behave alike at 256 px and at 4K.
METRIC_REFERENCE_SIZE = 256
DEFAULT_TEMPERATURE = 10.0
# Displacements shorter than this (pixels) are not drawn: far below what anyone can see.
STILL_BELOW_PX = 1 / 32
# Pixels splatted per chunk (frames x H x W); bounds the operator's scratch memory (about 150 B/pixel).
CHUNK_PIXELS = 1 << 22
# At most this many frames per chunk, so progress (and cancel) come often even for small pictures.
CHUNK_FRAMES = 16


def importance_metric(motion: MotionTexture, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """Paper's splatting weight: time-averaged flow magnitude, in reference pixels, times a temperature."""
    scale = METRIC_REFERENCE_SIZE / max(motion.height, motion.width)
    return motion.mean_magnitude() * (scale * temperature)


class Renderer(Protocol):
    name: str

    def render_chunk(self, image: torch.Tensor, fields: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        """image [B, 3, H, W] in 0..1; fields [n, B, 2, H, W]; metric [B, 1, H, W] -> frames [n, B, 3, H, W]."""


def fill_holes(values: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """Fill uncovered and partly covered pixels from a push-pull pyramid of the covered ones.

    Pixels with coverage >= 1 are returned unchanged; a pixel with coverage a < 1 blends its own value
    with the surrounding estimate by a.
    """
    alpha = coverage.clamp(0, 1)
    if bool((alpha >= 1).all()):
        return values
    levels = [(values * alpha, alpha)]
    while max(levels[-1][1].shape[-2:]) > 1 and bool((levels[-1][1] <= 0).any()):
        premult, a = levels[-1]
        kernel = tuple(2 if size > 1 else 1 for size in a.shape[-2:])
        levels.append((F.avg_pool2d(premult, kernel, ceil_mode=True), F.avg_pool2d(a, kernel, ceil_mode=True)))
    estimate = None
    for premult, a in reversed(levels):
        own = premult / a.clamp(min=1e-6)
        if estimate is None:
            estimate = own
            continue
        up = F.interpolate(estimate, size=premult.shape[-2:], mode="bilinear", align_corners=False)
        weight = (a * 4).clamp(max=1)  # trust a level's own colour once a quarter of it is covered
        estimate = own * weight + up * (1 - weight)
    blended = values * alpha + estimate * (1 - alpha)
    return torch.where(alpha >= 1, values, blended)


def footprint_variance(fields: torch.Tensor) -> torch.Tensor:
    """Per-source blur of the bilinear footprint, [N, 2, H, W]: d(1 - d) for the fractional offset d per axis."""
    frac = fields - torch.floor(fields)
    return frac * (1 - frac)


def restore_sharpness(frames: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Undo, to first order, the blur bilinear splatting adds: f ~ g - 1/2 (vx g_xx + vy g_yy).

    The blur varies with each pixel's fractional offset, so uncorrected loops shimmer in sharpness and the
    crisp picture at frame 0 pops; where the variance is 0 the pixels are returned untouched.
    """
    padded = F.pad(frames, (1, 1, 1, 1), mode="replicate")
    centre = padded[..., 1:-1, 1:-1]
    gxx = padded[..., 1:-1, 2:] - 2 * centre + padded[..., 1:-1, :-2]
    gyy = padded[..., 2:, 1:-1] - 2 * centre + padded[..., :-2, 1:-1]
    sharpened = (frames - 0.5 * (variance[:, 0:1] * gxx + variance[:, 1:2] * gyy)).clamp(0, 1)
    return torch.where((variance > 0).any(dim=1, keepdim=True), sharpened, frames)


class SplatRenderer:
    """Training-free renderer: softmax-splat the picture, restore the footprint's blur, fill holes."""

    name = "softmax splat (training-free)"

    def __init__(self, sharpen: bool = True, still_below_px: float = STILL_BELOW_PX):
        self.sharpen = sharpen
        self.still_below_px = still_below_px

    def render_chunk(self, image: torch.Tensor, fields: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        n, b, _, h, w = fields.shape
        flow = fields.reshape(n * b, 2, h, w)
        # Invisible sub-pixel drift would still resample (soften) the pixels; snapping it to zero keeps still
        # regions bit-identical to the picture in every frame, so nothing shimmers and frame 0 does not pop.
        flow = torch.where(flow.pow(2).sum(1, keepdim=True) < self.still_below_px ** 2, torch.zeros_like(flow), flow)
        frames = image.unsqueeze(0).expand(n, b, 3, h, w).reshape(n * b, 3, h, w)
        if self.sharpen:
            frames = torch.cat([frames, footprint_variance(flow)], dim=1)
        metric = metric.unsqueeze(0).expand(n, b, 1, h, w).reshape(n * b, 1, h, w)
        splatted, coverage = softmax_splat(frames, flow, metric)
        if self.sharpen:
            splatted = restore_sharpness(splatted[:, :3], splatted[:, 3:])
        return fill_holes(splatted, coverage).reshape(n, b, 3, h, w)


def render_frames(renderer: Renderer, image: torch.Tensor, motion: MotionTexture, *,
                  temperature: float = DEFAULT_TEMPERATURE, metric: torch.Tensor | None = None,
                  progress: Progress | None = None, out_device: torch.device | str = "cpu") -> torch.Tensor:
    """Render every frame of `motion` from `image` [B, 3, H, W]; returns [B, N, H, W, 3] on `out_device`.

    `metric` overrides the depth proxy ([B, 1, H, W], larger = in front). Progress is reported after each
    chunk as progress(frames done, total); an exception raised by it stops rendering (cancel).
    """
    b, c, h, w = image.shape
    if c != 3:
        raise ValueError(f"image must have 3 channels, got {c}")
    if (motion.batch, motion.height, motion.width) != (b, h, w):
        raise ValueError(f"motion texture is {motion.batch}x{motion.height}x{motion.width} (batch x H x W) "
                         f"but the picture is {b}x{h}x{w}; resize the spectral volume to the picture first")
    device = image.device
    if metric is None:
        metric = importance_metric(motion, temperature)
    metric = metric.to(device, image.dtype)
    total = motion.frame_count
    out = torch.empty(b, total, h, w, 3, device=out_device, dtype=image.dtype)
    step = max(1, min(CHUNK_FRAMES, CHUNK_PIXELS // (b * h * w)))
    for start, fields in motion.chunks(step):
        frames = renderer.render_chunk(image, fields.to(device, image.dtype), metric)
        out[:, start:start + frames.shape[0]] = frames.permute(1, 0, 3, 4, 2).to(out_device)
        if progress is not None:
            progress(start + frames.shape[0], total)
    return out
