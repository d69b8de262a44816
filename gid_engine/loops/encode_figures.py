"""How well a written loop keeps the frames: decode the file as a player would and measure it.

Figures (mean absolute difference of 8-bit RGB, on the decoded frames):
- median_step: median change between consecutive frames; largest_step_ratio: the largest one over it
  (key-frame pulses show here); wrap_ratio: the change from the last frame back to the first over it;
- psnr_db: decoded frames against the frames before encoding;
- still_max_step: the largest change, between any two consecutive frames (the wrap included), of a pixel
  that does not move in the frames before encoding and lies at least STILL_MARGIN pixels from any pixel
  that does (codecs code pictures in blocks and 4:2:0 video shares colour between 2x2 pixels, so a still
  pixel right next to motion cannot be told apart from it).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

STILL_MARGIN = 8


def decode_loop(path: str | os.PathLike[str]) -> np.ndarray:
    """Every frame of a written loop as uint8 [n, H, W, 3], decoded like a browser (BT.709 studio range video)."""
    path = Path(path)
    if path.suffix.lower() in (".webp", ".gif"):
        from PIL import Image

        frames = []
        with Image.open(path) as im:
            for i in range(im.n_frames):
                im.seek(i)
                frames.append(np.asarray(im.convert("RGB")))
        return np.stack(frames)
    import av
    from av.video.reformatter import ColorRange, Colorspace

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG)
                         for f in container.decode(video=0)])


def still_pixels(frames: np.ndarray, margin: int = STILL_MARGIN) -> np.ndarray:
    """[H, W] bool: pixels that never change over the loop and lie at least `margin` pixels from any that does."""
    moving = torch.from_numpy((frames != frames[:1]).any(axis=(0, 3))).float()[None, None]
    if margin > 0:
        moving = F.max_pool2d(moving, 2 * margin + 1, stride=1, padding=margin)
    return ~(moving[0, 0].bool().numpy())


def loop_figures(decoded: np.ndarray, reference: np.ndarray) -> dict:
    """The figures above for decoded frames against the frames before encoding (both uint8 [n, H, W, 3])."""
    if decoded.shape != reference.shape:
        raise ValueError(f"decoded frames {decoded.shape} do not match the reference frames {reference.shape}")
    d = torch.from_numpy(decoded).float()
    steps = (d[1:] - d[:-1]).abs().mean(dim=(1, 2, 3))
    wrap = float((d[0] - d[-1]).abs().mean())
    median = float(steps.median()) if len(steps) else 0.0
    mse = float(((d - torch.from_numpy(reference).float()) ** 2).mean())
    still = torch.from_numpy(still_pixels(reference))
    cyclic = torch.cat([d, d[:1]])
    still_step = 0.0
    if bool(still.any()):
        still_step = max(float((cyclic[i + 1] - cyclic[i]).abs().amax(dim=-1)[still].max()) for i in range(len(d)))
    return {
        "frames": int(decoded.shape[0]),
        "median_step": round(median, 4),
        "largest_step_ratio": round(float(steps.max()) / median, 3) if median > 0 else math.inf,
        "wrap_ratio": round(wrap / median, 3) if median > 0 else math.inf,
        "psnr_db": round(10 * math.log10(255 ** 2 / mse), 2) if mse > 0 else math.inf,
        "still_fraction": round(float(still.float().mean()), 4),
        "still_max_step": still_step,
    }


def meets_figures(figures: dict, reference: dict | None = None) -> bool:
    """The acceptance figures for MP4, WebM and WebP at default settings. With the figures of the frames before
    encoding (`reference`), a loop whose own frames already step unevenly is held to its own ratios (+10%):
    the file must not add a jump or a pulse, it cannot remove one the frames have."""
    wrap_limit, step_limit = 1.25, 2.0
    if reference is not None:
        wrap_limit = max(wrap_limit, 1.1 * reference["wrap_ratio"])
        step_limit = max(step_limit, 1.1 * reference["largest_step_ratio"])
    return (figures["wrap_ratio"] <= wrap_limit and figures["largest_step_ratio"] <= step_limit
            and figures["psnr_db"] >= 40 and figures["still_max_step"] <= 1)
