"""Per-pixel cues of one picture that say what it shows: vegetation, thin structures, texture, sky, skin,
flames, water. Each is a soft map [1, 1, h, w] in 0..1 on the prior's work grid; `mobility.py` combines them."""
from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ... import imageops

# Reach of "surrounded by vegetation" (share of the long side).
PLANT_CONTEXT = 0.04
# Straight edges shorter than this share of the long side are texture, not structure.
LINE_MIN_LENGTH = 0.05
# Reach of the straight-edge density (share of the long side).
LINE_REACH = 0.025


class MotionCues:
    """Per-pixel cues of one picture [1, 3, h, w] (0..1, CPU) that decide what moves and how."""

    def __init__(self, image: torch.Tensor):
        self.image = image.clamp(0, 1)
        _, _, self.h, self.w = image.shape
        self.sigma = max(0.7, max(self.h, self.w) / 256)  # the finest scale that reads as texture
        self.r, self.g, self.b = self.image[:, 0:1], self.image[:, 1:2], self.image[:, 2:3]
        self.lum = imageops.luminance(self.image)
        self.saturation = self.image.amax(1, keepdim=True) - self.image.amin(1, keepdim=True)

    @cached_property
    def guide(self) -> torch.Tensor:
        """Colours with fine texture blurred away: edges between objects, not between leaves."""
        return imageops.gaussian_blur(self.image, 2.5 * self.sigma)

    @cached_property
    def rows(self) -> torch.Tensor:
        return torch.linspace(0, 1, self.h).view(1, 1, -1, 1).expand(1, 1, self.h, self.w)

    @cached_property
    def upper(self) -> torch.Tensor:
        return imageops.smoothstep(0.75, 0.15, self.rows)

    @cached_property
    def lower(self) -> torch.Tensor:
        return imageops.smoothstep(0.2, 0.55, self.rows)

    @cached_property
    def vegetation(self) -> torch.Tensor:
        r, g, b = self.r, self.g, self.b
        # Chromatic greenness, so dark forest greens count as much as sunlit grass.
        green = (((g - torch.maximum(r, b)) / (g + 0.05) - 0.08) * 5).clamp(0, 1)
        # Autumn leaves are warm and saturated; textured, they are foliage (smooth warm is skin or sky).
        autumn = imageops.smoothstep(0.15, 0.35, self.saturation) * ((r - b) * 4).clamp(0, 1) * self.texture
        return torch.maximum(green, 0.8 * autumn)

    @cached_property
    def among_plants(self) -> torch.Tensor:
        """Textured things surrounded by vegetation: flower heads, seed heads, blossoms, reeds' tops, 0..1."""
        context = imageops.gaussian_blur(self.vegetation, PLANT_CONTEXT * max(self.h, self.w))
        return self.texture * imageops.smoothstep(0.15, 0.4, context)

    @cached_property
    def texture(self) -> torch.Tensor:
        """Fine detail energy relative to the picture's own, 0..1 (foliage, grass, ripples, hair)."""
        detail = self.lum - imageops.gaussian_blur(self.lum, 2 * self.sigma)
        energy = imageops.gaussian_blur(detail * detail, 4 * self.sigma).clamp(min=0).sqrt()
        # A floor keeps sensor noise on a flat picture from reading as texture.
        reference = torch.quantile(energy.flatten(), 0.9).clamp(min=0.02)
        return imageops.smoothstep(0.12, 0.75, energy / reference)

    @cached_property
    def thin(self) -> torch.Tensor:
        """Ridges and valleys a few pixels wide (stalks, twigs, strands): Hessian eigenvalue gap."""
        lum = imageops.gaussian_blur(self.lum, 1.5 * self.sigma)
        gx, gy = imageops.gradients(lum)
        gxx, gxy = imageops.gradients(gx)
        _, gyy = imageops.gradients(gy)
        root = torch.sqrt((gxx - gyy) ** 2 + 4 * gxy ** 2)
        l1, l2 = 0.5 * (gxx + gyy + root), 0.5 * (gxx + gyy - root)
        curvature = torch.maximum(l1.abs(), l2.abs())
        # A line's centre curves without sloping; a step edge (a horizon, a wall) slopes where it curves.
        # (curvature * scale / slope is 1 where a blurred step curves most and grows only far from it).
        slope = (gx.pow(2) + gy.pow(2)).sqrt().clamp(min=1e-6)
        line_like = imageops.smoothstep(2.5, 4.0, 1.5 * self.sigma * curvature / slope)
        strength = imageops.gaussian_blur((l1.abs() - l2.abs()).abs() * line_like, 2 * self.sigma)
        reference = torch.quantile(strength.flatten(), 0.97).clamp(min=0.01)
        return imageops.smoothstep(0.2, 0.8, strength / reference)

    @cached_property
    def sky(self) -> torch.Tensor:
        """Open sky, clouds included: bright, sky-coloured, not crisp, and connected to the top edge."""
        r, b = self.r, self.b
        top = self.lum[..., : max(1, self.h // 7), :]
        reference = torch.quantile(top.flatten(), 0.9)
        # Relative to the sky's own brightness, so a pale mountain under a brighter sky is not sky.
        bright = imageops.smoothstep(0.7, 0.85, self.lum / reference.clamp(min=0.2))
        sky_colour = torch.maximum(imageops.smoothstep(0.3, 0.1, self.saturation), ((b - r) * 5 + 0.3).clamp(0, 1))
        candidate = bright * sky_colour * (1 - self.vegetation) * imageops.smoothstep(0.8, 0.4, self.texture)
        return candidate * self.upper * _reachable_from_top(candidate > 0.3).float()

    @cached_property
    def skin(self) -> torch.Tensor:
        """Smooth skin-coloured areas (faces, hands)."""
        r, b = self.r, self.b
        # YCbCr skin box (Chai & Ngan 1999), softened.
        y = self.lum
        cb = 0.5 + (b - y) * 0.564
        cr = 0.5 + (r - y) * 0.713
        return (imageops.smoothstep(0.51, 0.54, cr) * imageops.smoothstep(0.71, 0.68, cr)
                * imageops.smoothstep(0.31, 0.34, cb) * imageops.smoothstep(0.54, 0.51, cb)
                * imageops.smoothstep(0.2, 0.3, y) * (1 - self.texture))

    @cached_property
    def flame(self) -> torch.Tensor:
        r, g, b = self.r, self.g, self.b
        warm = ((r - b) * 3 - 0.6).clamp(0, 1) * (r >= g).float()
        return warm * imageops.smoothstep(0.45, 0.7, self.lum) * imageops.smoothstep(0.35, 0.6, self.saturation)

    @cached_property
    def water(self) -> torch.Tensor:
        """Ripple texture (horizontal bands: vertical gradients dominate) low in the picture."""
        lum = imageops.gaussian_blur(self.lum, self.sigma)
        gx, gy = imageops.gradients(lum)
        ex = imageops.gaussian_blur(gx * gx, 4 * self.sigma)
        ey = imageops.gaussian_blur(gy * gy, 4 * self.sigma)
        banded = imageops.smoothstep(0.55, 0.8, ey / (ex + ey + 1e-8))
        not_plant = 1 - self.vegetation
        return banded * self.lower * not_plant * imageops.smoothstep(0.05, 0.35, self.texture + 0.15 * (self.b > self.r).float())

    @cached_property
    def straight_edges(self) -> torch.Tensor:
        """Density of long straight edges (buildings, furniture, vehicles, bottles, fences), 0..1.

        Line segments (OpenCV's LSD) at least LINE_MIN_LENGTH of the long side, not on foliage or along thin
        stalks, drawn by orientation family (nearer horizontal / nearer vertical). Man-made things carry both
        families close together; one family alone counts only where it is dense (a bottle's sides, a fence).
        Fails on: straight tree trunks among buildings-free scenes (read as rigid: they barely sway anyway),
        curved man-made shapes (a round vase has no long lines; its smoothness keeps it still instead).
        """
        gray = (self.lum[0, 0].numpy() * 255).round().astype(np.uint8)
        segments = cv2.createLineSegmentDetector().detect(gray)[0]
        families = np.zeros((2, self.h, self.w), np.float32)
        if segments is not None:
            long_side = max(self.h, self.w)
            foliage = (torch.maximum(self.vegetation, self.thin)[0, 0] > 0.5).numpy()
            for x0, y0, x1, y1 in segments.reshape(-1, 4):
                length = float(np.hypot(x1 - x0, y1 - y0))
                if length < LINE_MIN_LENGTH * long_side:
                    continue
                mid_x = min(self.w - 1, max(0, int((x0 + x1) / 2)))
                mid_y = min(self.h - 1, max(0, int((y0 + y1) / 2)))
                if foliage[mid_y, mid_x]:
                    continue
                family = 0 if abs(x1 - x0) >= abs(y1 - y0) else 1
                cv2.line(families[family], (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))),
                         1.0, 1)
        density = imageops.gaussian_blur(torch.from_numpy(families).unsqueeze(0), LINE_REACH * max(self.h, self.w))
        # Line pixels per pixel of neighbourhood, relative to one isolated line through it (~ 1 / (2.5 sigma)).
        one_line = 1 / (2.5 * LINE_REACH * max(self.h, self.w))
        both = (density[:, 0:1] * density[:, 1:2]).sqrt() / one_line
        single = density.amax(1, keepdim=True) / one_line
        return torch.maximum(imageops.smoothstep(0.5, 1.2, both), imageops.smoothstep(2.0, 3.5, single))

    @cached_property
    def smooth_surface(self) -> torch.Tensor:
        """Large smooth regions with specular highlights: glass, bottles, polished or painted surfaces, 0..1."""
        highlight = imageops.smoothstep(0.8, 0.95, self.lum) * imageops.smoothstep(0.25, 0.1, self.saturation)
        near_highlight = imageops.gaussian_blur(highlight, 3 * self.sigma) * 4
        return (imageops.smoothstep(0.25, 0.05, self.texture) * near_highlight.clamp(0, 1))

    @cached_property
    def rigid(self) -> torch.Tensor:
        """Rigid, man-made structure: dense long straight edges or smooth specular surfaces, 0..1."""
        return torch.maximum(self.straight_edges, self.smooth_surface)

    @cached_property
    def free(self) -> torch.Tensor:
        """Not sky and not skin: what may move at all in most presets."""
        return (1 - self.sky) * (1 - 0.9 * self.skin)


def _reachable_from_top(allowed: torch.Tensor) -> torch.Tensor:
    """Pixels of `allowed` [1, 1, h, w] (bool) joined to the top row through allowed pixels (8-neighbours)."""
    region = torch.zeros_like(allowed)
    region[..., 0, :] = allowed[..., 0, :]
    while True:
        grown = F.max_pool2d(region.float(), 3, stride=1, padding=1).bool() & allowed
        # Many steps at once between checks: the check is what costs.
        for _ in range(15):
            grown = F.max_pool2d(grown.float(), 3, stride=1, padding=1).bool() & allowed
        if torch.equal(grown, region):
            return region
        region = grown
