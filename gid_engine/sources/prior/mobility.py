"""Mobility: how free each pixel is to move (0 = must stay still, 1 = sways freely), and how far along its plant.

A cinemagraph lives on this: the subject still, the world around it alive. The estimate combines the cues of
`cues.py` (and the subjects of `subjects.py`) per preset:
- what moves: green vegetation (autumn colours too with the foliage preset: in auto they are as often brick,
  wood or fur), flowers and seed heads among plants, thin stalks, ripples low in the picture, flames;
- what vetoes motion: sky (for every preset but clouds), smooth skin, subjects (people, faces, animals,
  compact objects), rigid man-made structure (long straight edges, smooth specular surfaces), bare grey
  surfaces (rock, concrete, haze);
- the veto wins: a still thing among plants keeps still, and the motion ramps down *inside* the moving region
  before its edge (an eroded, then blurred map), so nothing still is dragged along by its neighbours.

`anchor_growth` then makes plants bend from where they are held: amplitude grows with the distance from the
support below them (ground, trunk, a rigid thing they stand on), so canopies move most at the top and tips and
stalks least at their base. Pictures without visible support (a meadow running out of the frame) keep full
amplitude.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ... import imageops
from .cues import MotionCues

# Mobility below this is still: it holds up what is above it (anchors) and takes no motion.
SUPPORT_BELOW = 0.2
# Still regions narrower than this share of the picture's height are specks, not ground.
SUPPORT_SIZE = 0.04
# Distance from an anchor (share of the picture's height) at which a plant reaches half its full amplitude.
HALF_GROWTH = 0.08
# The ramp from still to moving, as a share of the long side; laid inside the moving region.
EDGE_RAMP = 1 / 120


def mobility(cues: MotionCues, kind: str, subjects: torch.Tensor | None = None) -> torch.Tensor:
    """[1, 1, h, w] in 0..1 for one of the presets' cue combinations; `subjects` [1, 1, h, w] (1 = keep still)."""
    still = cues.rigid if subjects is None else torch.maximum(cues.rigid, subjects)
    if kind == "auto":
        veg, thin, t = cues.vegetation, cues.thin, cues.texture
        # Ripple-like bands read as water only weakly here: layered rock looks the same to these cues.
        water = torch.maximum(0.5 * cues.water, 0.8 * cues.reflection)
        loose = torch.maximum(torch.maximum(veg, 0.8 * thin * (0.4 + 0.6 * veg)), water)
        loose = torch.maximum(loose, 0.9 * cues.among_plants)
        # Foliage moves textured or not (a blurred background tree sways too), texture only adds to it;
        # texture alone (fur, fabric, brick, gravel) is not a reason to move.
        moving = loose * (0.45 + 0.55 * t)
        bare = 1 - imageops.smoothstep(0.12, 0.35, cues.saturation)  # grey rock, concrete, haze: rigid
        plant = torch.maximum(veg, cues.among_plants)  # white flowers and seed heads are not bare rock
        moving = moving * (1 - 0.8 * bare * (1 - plant)) * cues.free
        moving = torch.maximum(moving, 0.7 * cues.flame)
    elif kind == "foliage":
        plant = torch.maximum(torch.maximum(cues.vegetation, 0.8 * cues.autumn), cues.thin)
        moving = cues.texture * (0.15 + 0.85 * plant) * cues.free
    elif kind == "water":
        lower_texture = 0.3 * cues.texture * cues.lower * (1 - cues.vegetation)
        moving = torch.maximum(torch.maximum(cues.water, cues.reflection), lower_texture) * (1 - cues.sky)
        still = subjects if subjects is not None else torch.zeros_like(moving)  # ripples run along walls
    elif kind == "flame":
        moving = cues.flame
        still = torch.zeros_like(moving)  # a candle's flame sits on a rigid candle: only subjects veto
        if subjects is not None:
            still = subjects
    elif kind == "cloth":
        moving = torch.maximum(cues.texture, 0.8 * cues.thin) * cues.free
        still = subjects * cues.skin.clamp(min=0.0) if subjects is not None else torch.zeros_like(moving)
    elif kind == "sky":
        moving = cues.sky
        still = torch.zeros_like(moving)
    else:
        raise ValueError(f"unknown mobility cue set {kind!r}")
    moving = moving.clamp(0, 1) * (1 - still.clamp(0, 1))
    return soften_inward(moving, max(cues.h, cues.w) * EDGE_RAMP)


def soften_inward(mobility: torch.Tensor, radius: float) -> torch.Tensor:
    """Blur `mobility` so it changes gently across space (or the splatted picture stretches and tears), with the
    ramp laid inside moving regions: close the gaps between leaves (a blur), erode by the blur's reach, blur."""
    filled = imageops.gaussian_blur(mobility, radius)
    reach = max(1, int(round(1.5 * radius)))
    eroded = -F.max_pool2d(-filled, 2 * reach + 1, stride=1, padding=reach)
    return imageops.gaussian_blur(eroded, radius)


def anchor_growth(mobility: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Amplitude factor [1, 1, h, w] in 0..1 that grows with the distance from the support below each moving
    pixel. Support is still ground (not sky) directly below moving pixels; without any, 1 everywhere."""
    h, w = mobility.shape[-2:]
    moving = mobility[0, 0] > SUPPORT_BELOW
    support = ((~moving) & (sky[0, 0] < 0.5)).float().view(1, 1, h, w)
    # Only solid ground holds plants up: still specks inside a meadow (a dry patch, a shadow) are opened away.
    speck = max(1, round(SUPPORT_SIZE * h / 2))
    support = F.max_pool2d(-F.max_pool2d(-support, 2 * speck + 1, stride=1, padding=speck), 2 * speck + 1, stride=1,
                           padding=speck)[0, 0] > 0.5
    reach = max(1, round(h / 100))
    # A support pixel anchors the moving pixels just above it (gravity: plants stand on what holds them).
    anchors = support.clone()
    anchors[reach:] &= moving[:-reach]
    anchors[:reach] = False
    if not bool(anchors.any()):
        return torch.ones_like(mobility)
    free = (~anchors).numpy().astype(np.uint8)
    distance = cv2.distanceTransform(free, cv2.DIST_L2, 5)
    half = HALF_GROWTH * h
    distance = torch.from_numpy(distance).view(1, 1, h, w).to(mobility.dtype)
    return distance / (distance + half)
