"""Which way things sway: across thin oriented structures (stalks sway sideways), along the preset's axis elsewhere."""
from __future__ import annotations

import math

import torch

from ... import imageops
from .cues import MotionCues
from .presets import Preset


def sway_direction(cues: MotionCues, preset: Preset) -> torch.Tensor:
    """Unit main direction [1, 2, h, w]: across oriented structures, along the preset's axis elsewhere."""
    angle = math.radians(preset.wind_angle_deg)
    wind = torch.tensor([math.cos(angle), math.sin(angle)]).view(1, 2, 1, 1)
    if preset.follow_structure <= 0:
        return wind.expand(1, 2, cues.h, cues.w).clone()
    lum = imageops.gaussian_blur(cues.lum, cues.sigma)
    gx, gy = imageops.gradients(lum)
    jxx = imageops.gaussian_blur(gx * gx, 3 * cues.sigma)
    jxy = imageops.gaussian_blur(gx * gy, 3 * cues.sigma)
    jyy = imageops.gaussian_blur(gy * gy, 3 * cues.sigma)
    theta = 0.5 * torch.atan2(2 * jxy, jxx - jyy)  # dominant gradient direction = across the structure
    coherence = torch.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy + 1e-8)
    across = torch.cat([torch.cos(theta), torch.sin(theta)], dim=1)
    alignment = (across * wind).sum(1, keepdim=True)
    across = across * torch.where(alignment < 0, -1.0, 1.0)
    # An axis has no sign: where it turns perpendicular to the wind the sign choice flips, so fade the
    # structure term out there, or neighbours would swing in opposite directions (tearing).
    c = preset.follow_structure * coherence.clamp(0, 1) ** 2 * alignment.abs()
    direction = (1 - c) * wind + c * across
    return direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-6)
