"""Small image operations shared by motion sources and renderers (device-agnostic torch; OpenCV for CPU blurs)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def luminance(image: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] -> [B, 1, H, W] (Rec. 601 weights)."""
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W] with reflect padding; large sigmas go through a smaller grid."""
    if sigma <= 0.3:
        return x
    h, w = x.shape[-2:]
    if sigma > 8:
        factor = int(sigma // 4)
        small = F.interpolate(x, size=(max(1, math.ceil(h / factor)), max(1, math.ceil(w / factor))),
                              mode="area")
        return F.interpolate(gaussian_blur(small, sigma / factor), size=(h, w), mode="bilinear",
                             align_corners=False)
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = x
    # Reflect padding needs pad < size; replicate covers tiny pictures.
    mode = "reflect" if radius < min(h, w) else "replicate"
    if _cv2_can_blur(x):
        return _cv2_blur(x, kernel, mode)
    out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode=mode), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode=mode), kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out


def _cv2_can_blur(x: torch.Tensor) -> bool:
    # OpenCV's separable filter is many times faster than torch's depthwise conv2d on CPU; same kernel and
    # border, so the two agree to float32 rounding. Autograd and other devices stay with torch.
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not (torch.is_grad_enabled() and x.requires_grad)
            and x.numel() > 0)


def _cv2_blur(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    border = cv2.BORDER_REFLECT_101 if mode == "reflect" else cv2.BORDER_REPLICATE
    taps = kernel.numpy()
    planes = x.detach().contiguous().reshape(-1, *x.shape[-2:]).numpy()
    out = np.empty_like(planes)
    for i, plane in enumerate(planes):
        cv2.sepFilter2D(plane, cv2.CV_32F, taps, taps, dst=out[i], borderType=border)
    return torch.from_numpy(out).reshape(x.shape)


def gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of [B, 1, H, W] (replicated border)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) * 0.5
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) * 0.5
    return gx, gy


def smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def work_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """Size with the given long side (never upscaled), aspect kept."""
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))
