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
# Below this vegetation a pixel is not plant-coloured.
PLANT_LIKE = 0.35
# Flowers and seed heads are at most this wide (share of the long side); wider non-green things are not plants.
FLOWER_SIZE = 0.06
# A waterline needs the picture below it to mirror the picture above at least this well: correlation of the
# horizontal gradients (upright edges: towers, trunks, necks), which blurred brightness alone matches by chance on
# meadows and walls (0.6-0.9 there; real lakes 0.6-0.9 too, but their edges match 0.6 where others stay below 0.45).
MIRROR_MATCH = 0.5
# ... and its mirror image at least this much better than an unflipped copy of the part above.
MIRROR_MARGIN = 0.2
# A reflection spans at least this share of the picture's width.
WATER_SPAN = 0.6
# Open water reaches this far (share of the long side) from where it shows a reflection.
WATER_REACH = 0.1
# Straight edges shorter than this share of the long side are texture, not structure.
LINE_MIN_LENGTH = 0.05
# Reach of the straight-edge density (share of the long side).
LINE_REACH = 0.02
# A straight edge is structural where the texture on one side is below this (smooth wall, glass, paint).
STRUCTURE_TEXTURE = 0.45
# Reach (share of the long side) over which gradients are weighed for `rectilinear`; its share of gradient energy
# along the image axes is foliage-like up to the first value and man-made from the second (brick facades 0.86-0.89,
# planks and boards 0.94; autumn larches, leaves and seed heads 0.75-0.80; isotropic texture 0.75).
RECTILINEAR_REACH = 0.03
RECTILINEAR = (0.83, 0.88)
# Warm foliage moves in `auto` where plants are within this reach (share of the long side): an autumn wood
# beside a meadow or conifers, backlit seed heads above their stalks, not a stage's robes.
AUTUMN_CONTEXT = 0.1
# Level structure: `level` from the first value on (fully from the second), where plants cover less than the first
# share of the surroundings (none of it from the second share on).
LEVEL = (0.6, 0.75)
LEVEL_PLANTS = (0.15, 0.35)
# Skin is not yellow-green: none from the second hue up (degrees; to green), all from the first down (faces under
# warm light reach about 35, olive lawns start about 45; pinks and reds wrap round from 360).
SKIN_HUE = (40.0, 46.0)


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
    def green(self) -> torch.Tensor:
        """Foliage hues from yellow-green to blue-green, by hue and relative saturation rather than brightness,
        so dark forest greens and greyish olive leaves count as much as sunlit grass."""
        hue = self.hue
        return (imageops.smoothstep(35, 55, hue) * imageops.smoothstep(175, 150, hue)
                * imageops.smoothstep(0.06, 0.2, self.relative_saturation) * imageops.smoothstep(0.02, 0.08, self.value))

    @cached_property
    def vegetation(self) -> torch.Tensor:
        """Green foliage. Autumn colours are not counted here: warm saturated texture is as often brick, wood,
        fur or paint (see `autumn`, which the foliage preset adds)."""
        return self.green

    @cached_property
    def autumn(self) -> torch.Tensor:
        """Warm, saturated, textured: autumn leaves, backlit seed heads and grass (and fur, wood, brick that is
        not laid in straight courses), 0..1."""
        r, b = self.r, self.b
        return (imageops.smoothstep(0.15, 0.35, self.saturation) * ((r - b) * 4).clamp(0, 1) * self.texture
                * (1 - self.straight_edges) * (1 - imageops.smoothstep(*RECTILINEAR, self.rectilinear)))

    @cached_property
    def autumn_among_plants(self) -> torch.Tensor:
        """`autumn` within AUTUMN_CONTEXT of plants, 0..1. Fails on: brick or fur in a garden whose texture runs
        every way (an animal there is a subject and keeps still), autumn woods with no green in reach."""
        context = imageops.gaussian_blur(self.vegetation, AUTUMN_CONTEXT * max(self.h, self.w))
        return self.autumn * imageops.smoothstep(0.05, 0.2, context)

    @cached_property
    def _axis_energy(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Within RECTILINEAR_REACH: the sums of gx^4, of gy^4 and of (gx^2 + gy^2)^2 (for `rectilinear`, `level`)."""
        gx, gy = imageops.gradients(imageops.gaussian_blur(self.lum, self.sigma))
        reach = RECTILINEAR_REACH * max(self.h, self.w)
        energy = gx * gx + gy * gy
        return (imageops.gaussian_blur(gx ** 4, reach), imageops.gaussian_blur(gy ** 4, reach),
                imageops.gaussian_blur(energy * energy, reach).clamp(min=1e-12))

    @cached_property
    def rectilinear(self) -> torch.Tensor:
        """Share of the gradient energy along the image axes, 0.5..1 (sum of gx^4 + gy^4 over that of
        (gx^2 + gy^2)^2 within RECTILINEAR_REACH): 1 for walls, windows, planks and fences seen square on, 0.75 for
        texture running every way (leaves, grass tufts), 0.5 for diagonals. Fails on: buildings seen at a steep
        angle, upright grass and reeds (about 0.83)."""
        along_x, along_y, total = self._axis_energy
        return (along_x + along_y) / total

    @cached_property
    def level(self) -> torch.Tensor:
        """Share of the gradient energy across horizontal lines, 0..1 (sum of gy^4 over that of (gx^2 + gy^2)^2
        within RECTILINEAR_REACH): near 1 for planks, siding, brick courses, shelves and railings, 3/8 for texture
        running every way, near 0 for upright stalks and grass. Fails on: a plant of level lines (a cedar's
        tiers, grass bent flat by the wind)."""
        _, along_y, total = self._axis_energy
        return along_y / total

    @cached_property
    def plant_context(self) -> torch.Tensor:
        """How much of the surroundings (within PLANT_CONTEXT of the long side) is plant-coloured, 0..1."""
        return imageops.gaussian_blur(self.vegetation, PLANT_CONTEXT * max(self.h, self.w))

    @cached_property
    def level_structure(self) -> torch.Tensor:
        """Level lines with few plants around them, 0..1: the joints and grain of planks, siding, brick courses,
        shelves (`level` from LEVEL on, where plant colour covers under LEVEL_PLANTS of the surroundings within
        PLANT_CONTEXT). Their dark joints are as thin and often as greenish-grey as stalks; a meadow's level
        bands are full of plants and do not count. Fails on: a fence or siding half hidden by plants."""
        return imageops.smoothstep(*LEVEL, self.level) * (1 - imageops.smoothstep(*LEVEL_PLANTS, self.plant_context))

    @cached_property
    def value(self) -> torch.Tensor:
        return self.image.amax(1, keepdim=True)

    @cached_property
    def relative_saturation(self) -> torch.Tensor:
        """HSV saturation: chroma relative to brightness (a dark green is as green as a bright one)."""
        return self.saturation / self.value.clamp(min=1e-3)

    @cached_property
    def hue(self) -> torch.Tensor:
        """HSV hue in degrees, 0..360 (red 0, yellow 60, green 120, blue 240)."""
        r, g, b = self.r, self.g, self.b
        chroma = self.saturation.clamp(min=1e-6)
        top = self.value
        hue = torch.where(top == r, ((g - b) / chroma) % 6,
                          torch.where(top == g, (b - r) / chroma + 2, (r - g) / chroma + 4))
        return hue * 60

    @cached_property
    def among_plants(self) -> torch.Tensor:
        """Small textured things surrounded by vegetation: flower heads, seed heads, blossoms, reeds' tops, 0..1.
        Small: an animal or a bottle standing in grass is as surrounded, but too large to be a flower (what
        survives an opening of the non-plant parts at FLOWER_SIZE is too large)."""
        return self.texture * imageops.smoothstep(0.15, 0.4, self.plant_context) * (1 - self.large_non_plant)

    @cached_property
    def large_non_plant(self) -> torch.Tensor:
        """Parts of non-vegetation regions wider than FLOWER_SIZE of the long side (a morphological opening)."""
        other = (self.vegetation < PLANT_LIKE).float()
        reach = max(1, round(FLOWER_SIZE * max(self.h, self.w) / 2))
        eroded = -F.max_pool2d(-other, 2 * reach + 1, stride=1, padding=reach)
        opened = F.max_pool2d(eroded, 2 * reach + 1, stride=1, padding=reach)
        return imageops.gaussian_blur(opened, reach / 2)

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
        """Smooth skin-coloured areas (faces, hands): in the YCbCr skin box and not yellower than skin gets (the box
        also holds olive lawns and dry grass, hue 45-55 degrees, which then kept still)."""
        r, b = self.r, self.b
        # YCbCr skin box (Chai & Ngan 1999), softened.
        y = self.lum
        cb = 0.5 + (b - y) * 0.564
        cr = 0.5 + (r - y) * 0.713
        return (imageops.smoothstep(0.51, 0.54, cr) * imageops.smoothstep(0.71, 0.68, cr)
                * imageops.smoothstep(0.31, 0.34, cb) * imageops.smoothstep(0.54, 0.51, cb)
                * imageops.smoothstep(0.2, 0.3, y) * (1 - self.texture)
                * (1 - imageops.smoothstep(*SKIN_HUE, self.hue) * imageops.smoothstep(130.0, 110.0, self.hue)))

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
    def waterline(self) -> int | None:
        """The row of still water's edge, where the picture below mirrors the picture above (None: no mirror).

        The row about which the horizontal gradients of the lower part best match those of the upper part
        flipped (normalised cross-correlation, at least MIRROR_MATCH, and MIRROR_MARGIN better than unflipped),
        searched in the lower 70 % of the picture.
        """
        edges = imageops.gradients(imageops.gaussian_blur(self.lum, self.sigma))[0][0, 0]
        h = self.h
        best, line = 0.0, None
        for y0 in range(int(0.3 * h), int(0.85 * h)):
            n = min(y0, h - y0, int(0.3 * h))
            if n < 0.08 * h:
                continue
            below, above = edges[y0:y0 + n], edges[y0 - n:y0]
            score = _correlation(below, above.flip(0))
            if score > best:
                best, line = score, y0
        if best < MIRROR_MATCH:
            return None
        # Upright things that do not change along their height (a pole, the sides of a hedge) match their mirror
        # image as well as an unflipped copy: a reflection matches its mirror image clearly better.
        n = min(line, h - line, int(0.3 * h))
        shifted = _correlation(edges[line:line + n], edges[line - n:line])
        return line if best - max(shifted, 0.0) >= MIRROR_MARGIN else None

    @cached_property
    def reflection(self) -> torch.Tensor:
        """Still water that mirrors what stands above it (a lake under a castle, trees or swans), 0..1: below the
        `waterline`, the pixels whose neighbourhood matches its mirror image.
        Fails on: water without a visible reflection (open sea, a dark pond; the water preset's ripple cue covers
        textured water), a reflection broken by ripples or by things in front of it (boats on a shore), and symmetric
        scenes that are not water (rare: they need upright edges mirrored about a row in the lower 70 %).
        """
        line = self.waterline
        if line is None:
            return torch.zeros_like(self.lum)
        h = self.h
        lum = imageops.gaussian_blur(self.lum, 1.5 * self.sigma)[0, 0]
        rows = torch.arange(h)
        mirror_rows = (2 * line - 1 - rows).clamp(0, h - 1)
        mirrored = lum[mirror_rows]
        # Local normalised match of each pixel's neighbourhood with its mirror image.
        reach = 4 * self.sigma
        blur = lambda t: imageops.gaussian_blur(t.view(1, 1, h, self.w), reach)[0, 0]  # noqa: E731
        mu_a, mu_b = blur(lum), blur(mirrored)
        cov = blur(lum * mirrored) - mu_a * mu_b
        var = (blur(lum * lum) - mu_a ** 2).clamp(min=0) * (blur(mirrored * mirrored) - mu_b ** 2).clamp(min=0)
        local = cov / var.sqrt().clamp(min=1e-4)
        below_line = (rows >= line).float().view(h, 1)
        # Flat areas match anything and show no motion: only structure that mirrors counts.
        mirror = (imageops.smoothstep(0.2, 0.6, local) * below_line).view(1, 1, h, self.w)
        # A reflection is a blurred copy: fine green texture below the line is a meadow, not its mirror image.
        mirror = mirror * (1 - self.green * self.texture)
        # A lake mirrors a shore, not one upright thing (a lone stalk or pole is its own mirror image about any row).
        span = float((mirror > 0.5).any(dim=-2).float().mean())
        return mirror if span >= WATER_SPAN else torch.zeros_like(mirror)

    @cached_property
    def water_surface(self) -> torch.Tensor:
        """The open water below a `waterline`, 0..1: everything below it within WATER_REACH of its `reflection`
        (mirrored trees and copper roofs included, green as they are), with a ramp of a few pixels below the line.
        Things floating on it (swans, boats) stand above the line; what stands below it is their reflection.
        Fails on: a shore of grass, sand or pebbles right in front of the water (ripples as water), a waterline
        that is not found (see `reflection`)."""
        line = self.waterline
        if line is None:
            return torch.zeros_like(self.lum)
        # From the line down: the bank the water mirrors stands right above it.
        below = imageops.smoothstep(line, line + 4 * self.sigma, self.rows * (self.h - 1))
        # Water where a reflection shows (within WATER_REACH): flat water far from anything it mirrors shows no
        # ripple anyway, and a shore of sand or pebbles there stays still.
        reach = max(1, round(WATER_REACH * max(self.h, self.w)))
        near = (self.reflection > 0.5).float()
        for size in ((2 * reach + 1, 1), (1, 2 * reach + 1)):  # a square dilation, one axis at a time
            near = F.max_pool2d(near, size, stride=1, padding=(size[0] // 2, size[1] // 2))
        return below * imageops.gaussian_blur(near, reach / 2)

    @cached_property
    def straight_edges(self) -> torch.Tensor:
        """Nearness to long straight structural edges (buildings, furniture, vehicles, bottles, fences), 0..1.

        Line segments (OpenCV's LSD) at least LINE_MIN_LENGTH of the long side, not on green foliage or along
        thin stalks, and structural: smooth on at least one side (a wall, a bottle, a car body), where a
        straight run of grass or twigs is textured on both. One such line makes a strip around it rigid;
        several close together (a facade, a bottle's two sides) make the whole area rigid.
        Fails on: straight trunks and poles (read as rigid: they barely sway anyway), curved man-made shapes (a
        round vase has no long lines; smoothness keeps it still instead), buildings under heavy texture (ivy).
        """
        gray = (self.lum[0, 0].numpy() * 255).round().astype(np.uint8)
        segments = cv2.createLineSegmentDetector().detect(gray)[0]
        lines = np.zeros((self.h, self.w), np.float32)
        if segments is not None:
            long_side = max(self.h, self.w)
            foliage = (torch.maximum(self.green, self.thin)[0, 0] > 0.5).numpy()
            texture = self.texture[0, 0].numpy()
            offset = 2 * self.sigma + 1
            for x0, y0, x1, y1 in segments.reshape(-1, 4):
                length = float(np.hypot(x1 - x0, y1 - y0))
                if length < LINE_MIN_LENGTH * long_side:
                    continue
                nx, ny = -(y1 - y0) / length * offset, (x1 - x0) / length * offset
                ts = np.array([0.25, 0.5, 0.75])
                xs, ys = x0 + ts * (x1 - x0), y0 + ts * (y1 - y0)
                if foliage[self._rows(ys), self._cols(xs)].mean() > 0.5:
                    continue
                left = texture[self._rows(ys + ny), self._cols(xs + nx)].mean()
                right = texture[self._rows(ys - ny), self._cols(xs - nx)].mean()
                if min(left, right) > STRUCTURE_TEXTURE:
                    continue
                cv2.line(lines, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))), 1.0, 1)
        reach = LINE_REACH * max(self.h, self.w)
        density = imageops.gaussian_blur(torch.from_numpy(lines).view(1, 1, self.h, self.w), reach)
        # Relative to one isolated line through the pixel (a blurred line peaks near 1 / (2.5 sigma)).
        return imageops.smoothstep(0.35, 0.9, density * 2.5 * reach)

    def _rows(self, ys: np.ndarray) -> np.ndarray:
        return np.clip(np.round(ys).astype(int), 0, self.h - 1)

    def _cols(self, xs: np.ndarray) -> np.ndarray:
        return np.clip(np.round(xs).astype(int), 0, self.w - 1)

    @cached_property
    def smooth_surface(self) -> torch.Tensor:
        """Large smooth regions with specular highlights: glass, bottles, polished or painted surfaces, 0..1."""
        highlight = imageops.smoothstep(0.8, 0.95, self.lum) * imageops.smoothstep(0.25, 0.1, self.saturation)
        near_highlight = imageops.gaussian_blur(highlight, 3 * self.sigma) * 4
        # Smooth at the scale of the surface, not only of the highlight: fluffy seed heads glint too.
        smooth = imageops.smoothstep(0.2, 0.05, imageops.gaussian_blur(self.texture, 3 * self.sigma))
        return smooth * near_highlight.clamp(0, 1) * (1 - self.among_plants)

    @cached_property
    def rigid(self) -> torch.Tensor:
        """Rigid, man-made structure: dense long straight edges or smooth specular surfaces, 0..1."""
        return torch.maximum(self.straight_edges, self.smooth_surface)

    @cached_property
    def free(self) -> torch.Tensor:
        """Not sky and not skin: what may move at all in most presets. Skin colour among plants is more often a
        backlit flower or seed head than a face (faces are smooth: they are not `among_plants`)."""
        return (1 - self.sky) * (1 - 0.9 * self.skin * (1 - self.among_plants))


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / ((a * a).sum() * (b * b).sum()).sqrt().clamp(min=1e-8))


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
