"""Per-pixel cues of one picture that say what it shows: vegetation, thin structures, texture, sky, skin,
flames, water. Each is a soft map [1, 1, h, w] in 0..1 on the prior's work grid; `mobility.py` combines them."""
from __future__ import annotations

import math
from functools import cached_property

import torch
import torch.nn.functional as F

from ... import imageops
from .presets import Preset


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
    def free(self) -> torch.Tensor:
        """Not sky and not skin: what may move at all in most presets."""
        return (1 - self.sky) * (1 - 0.9 * self.skin)

    def mobility(self, kind: str) -> torch.Tensor:
        """[1, 1, h, w] in 0..1 for one of the presets' cue combinations."""
        if kind == "auto":
            t, veg, thin = self.texture, self.vegetation, self.thin
            # Ripple-like bands read as water only weakly here: layered rock looks the same to these cues.
            loose = torch.maximum(torch.maximum(veg, thin), 0.5 * self.water)
            bare = 1 - imageops.smoothstep(0.12, 0.35, self.saturation)  # grey rock, concrete, haze: rigid
            mobility = torch.maximum(t * (0.3 + 0.7 * loose), 0.6 * thin) * (1 - 0.8 * bare * (1 - veg))
            mobility = mobility * self.free
            mobility = torch.maximum(mobility, 0.7 * self.flame)
        elif kind == "foliage":
            mobility = self.texture * (0.15 + 0.85 * torch.maximum(self.vegetation, self.thin)) * self.free
        elif kind == "water":
            lower_texture = 0.3 * self.texture * self.lower * (1 - self.vegetation)
            mobility = torch.maximum(self.water, lower_texture) * (1 - self.sky)
        elif kind == "flame":
            mobility = self.flame
        elif kind == "cloth":
            mobility = torch.maximum(self.texture, 0.8 * self.thin) * self.free
        elif kind == "sky":
            mobility = self.sky
        else:
            raise ValueError(f"unknown mobility cue set {kind!r}")
        # Amplitude must change gently across space or the splatted picture stretches and tears.
        return imageops.gaussian_blur(mobility.clamp(0, 1), max(self.h, self.w) / 120)

    def direction(self, preset: Preset) -> torch.Tensor:
        """Unit main direction [1, 2, h, w]: across oriented structures, along the preset's axis elsewhere."""
        angle = math.radians(preset.wind_angle_deg)
        wind = torch.tensor([math.cos(angle), math.sin(angle)]).view(1, 2, 1, 1)
        if preset.follow_structure <= 0:
            return wind.expand(1, 2, self.h, self.w).clone()
        lum = imageops.gaussian_blur(self.lum, self.sigma)
        gx, gy = imageops.gradients(lum)
        jxx = imageops.gaussian_blur(gx * gx, 3 * self.sigma)
        jxy = imageops.gaussian_blur(gx * gy, 3 * self.sigma)
        jyy = imageops.gaussian_blur(gy * gy, 3 * self.sigma)
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
