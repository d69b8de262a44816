"""A procedural spectral motion prior: natural-looking oscillation from one picture, no weights.

In the spirit of stochastic motion textures (Chuang et al. 2005) and the paper's observed spectra:
- per-bin amplitudes follow the measured natural spectrum (assets/natural_motion_spectrum.json),
  rescaled to the picture's grid and tilted by the preset's frequency character;
- each bin's complex coefficient is a random field smoothed by an edge-aware recursive filter
  (the domain transform of Gastal & Oliveira 2011) guided by the picture's colours: pixels of one
  object share their phase over a length that shrinks with frequency (branches sway slowly, leaves
  flutter locally), while the filter stops at object boundaries, so separate objects move independently;
- motion is strong where things are free to move (fine texture, foliage, thin structures, water, flames)
  and near zero on the sky, smooth skin and bare, rigid surfaces; presets shift these cues;
- directions follow the picture's structure (thin things sway across their length) or the preset's
  own axis (flames rise, water bobs); water, flames and cloth carry travelling waves;
- DC is set so the displacement at t = 0 is exactly zero: frame 0 is the picture itself.

All random numbers come from a CPU torch.Generator and the work is done on CPU at a small grid, so a
seed gives the same motion on every device; only the final resize runs on the picture's device.

The volume comes at the picture's size up to OUTPUT_LONG_SIDE; a larger picture (4K, 8K) gets it at that
long side, aspect kept (the motion is smooth far below it; consumers resize it, as for any volume on another
grid). That bounds the prior's memory: an 8K volume would be 8.5 GB by itself.
"""
from __future__ import annotations

import dataclasses
import math
from contextlib import contextmanager
from functools import cached_property

import torch
import torch.nn.functional as F

from .. import imageops
from ..spectral.normalization import natural_motion_spectrum
from ..spectral.volume import DEFAULT_BINS, DEFAULT_FPS, DEFAULT_PERIOD, SpectralVolume, at_rest_dc, coherence_length

# Cues are read at this long side; random fields live on a coarser grid (they are smooth anyway).
WORK_LONG_SIDE = 384
FIELD_LONG_SIDE = 192
# Colour difference (sum over RGB of the guide) that counts as an object boundary for the phase fields.
EDGE_SIGMA = 0.2
# Plain blur after the edge-aware one (field-grid pixels): boundaries become short ramps, never 1-pixel tears.
SEAM_BLUR = 1.5
FILTER_ITERATIONS = 3
# The volume's long side at most (pixels); 1920x1080 and smaller pictures get a volume at their own size.
OUTPUT_LONG_SIDE = 2048


@dataclasses.dataclass(frozen=True)
class Preset:
    """The motion character of one kind of scene."""

    description: str
    mobility: str  # which cue combination says what moves (see MotionCues.mobility)
    wind_angle_deg: float = 0.0  # main motion axis, image coordinates (0 = right, 90 = down)
    follow_structure: float = 1.0  # 1: thin oriented things sway across their length; 0: always along the axis
    sideways: float = 0.3  # relative amplitude of motion across the main axis
    length_scale: float = 1.0  # phase coherence length relative to the natural default
    anisotropy: float = 1.0  # horizontal / vertical coherence length
    spectral_tilt: float = 0.0  # per-bin log slope added to the natural spectrum (> 0: more flicker)
    amplitude: float = 1.0
    gust_share: float = 0.35  # share of the lowest band driven by one scene-wide gust
    travel_speed: float = 0.0  # travelling-wave speed, long sides per second (0: standing sway)
    travel_angle_deg: float = 0.0


PRESETS: dict[str, Preset] = {
    "auto": Preset("Reads the picture: foliage, thin stalks, water and flames move; sky, skin and bare "
                   "surfaces stay nearly still.", mobility="auto"),
    "foliage": Preset("Leaves, grass and branches swaying in wind.", mobility="foliage", sideways=0.35),
    "water ripples": Preset("Small local ripples that bob and travel towards the viewer.", mobility="water",
                            wind_angle_deg=90.0, follow_structure=0.0, sideways=0.6, length_scale=0.35,
                            anisotropy=3.0, spectral_tilt=0.05, amplitude=0.6, gust_share=0.0,
                            travel_speed=0.04, travel_angle_deg=90.0),
    "flame flicker": Preset("Fast upward flicker of flames and candles.", mobility="flame", wind_angle_deg=-90.0,
                            follow_structure=0.0, sideways=0.5, length_scale=0.3, anisotropy=0.5,
                            spectral_tilt=0.12, amplitude=0.7, gust_share=0.0, travel_speed=0.12,
                            travel_angle_deg=-90.0),
    "cloth and hair": Preset("Fabric and hair rippling in a breeze; faces stay still.", mobility="cloth",
                             follow_structure=0.7, sideways=0.4, length_scale=1.3, spectral_tilt=0.02,
                             gust_share=0.3, travel_speed=0.08),
    "clouds drift": Preset("Slow, wide drift of clouds; the land stays still.", mobility="sky",
                           follow_structure=0.0, sideways=0.2, length_scale=2.5, anisotropy=2.0,
                           spectral_tilt=-0.2, gust_share=0.6),
}
DEFAULT_PRESET = "auto"


def preset_named(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset: unknown motion preset {name!r}; known: {', '.join(PRESETS)}") from None


@dataclasses.dataclass(frozen=True)
class ProceduralPrior:
    name: str = "procedural motion prior"
    num_bins: int = DEFAULT_BINS
    fps: float = DEFAULT_FPS
    period: int = DEFAULT_PERIOD
    preset: str = DEFAULT_PRESET

    def __post_init__(self):
        preset_named(self.preset)

    def predict(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None,
                intensity: float = 1.0, progress=None) -> SpectralVolume:
        """image [B, 3, H, W] in 0..1; mask [B or 1, 1, H, W], 1 = may move (0 gives exactly no motion)."""
        b, _, h, w = image.shape
        if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or tuple(mask.shape[-2:]) != (h, w)
                                 or mask.shape[0] not in (1, b)):
            raise ValueError(f"mask: expected [1 or {b}, 1, {h}, {w}], got {tuple(mask.shape)}")
        oh, ow = imageops.work_size(h, w, OUTPUT_LONG_SIDE)
        coeffs = None
        for i in range(b):
            one_mask = None if mask is None else mask[min(i, mask.shape[0] - 1):][:1]
            with _one_cpu_thread():
                small = self._predict_one(image[i:i + 1], seed + i, intensity, one_mask)
            one = self._volume(small.to(image.device)).resize(oh, ow).coeffs
            if b == 1:
                coeffs = one
            else:  # written into the batch as it comes: no list of copies
                if coeffs is None:
                    coeffs = one.new_empty((b, *one.shape[1:]))
                coeffs[i] = one[0]
            del one
            if progress is not None:
                progress(i + 1, b)
        if mask is not None:
            grid_mask = mask.to(image.device, torch.float32)
            if (oh, ow) != (h, w):
                grid_mask = F.interpolate(grid_mask, size=(oh, ow), mode="area")  # 0 stays 0 where all of it is
            coeffs.mul_(grid_mask.unsqueeze(1))
        return SpectralVolume(coeffs, fps=self.fps, period=self.period,
                              metadata={"source": self.name, "preset": self.preset, "seed": seed,
                                        "intensity": intensity})

    def _volume(self, coeffs: torch.Tensor) -> SpectralVolume:
        return SpectralVolume(coeffs, fps=self.fps, period=self.period)

    def _predict_one(self, image: torch.Tensor, seed: int, intensity: float,
                     mask: torch.Tensor | None) -> torch.Tensor:
        preset = preset_named(self.preset)
        _, _, h, w = image.shape
        wh, ww = imageops.work_size(h, w, WORK_LONG_SIDE)
        small = F.interpolate(image.detach().float().cpu(), size=(wh, ww), mode="area")
        cues = MotionCues(small)
        mobility = cues.mobility(preset.mobility)
        direction = cues.direction(preset)
        across = torch.cat([-direction[:, 1:2], direction[:, 0:1]], dim=1)

        data = natural_motion_spectrum()
        rms = torch.tensor(data["rms_per_bin"][:self.num_bins], dtype=torch.float32)
        rms = rms * (ww / data["width"]) * (self.period / data["frames_in_window"])
        tilted = rms[1:] * torch.exp(preset.spectral_tilt * torch.arange(self.num_bins - 1, dtype=torch.float32))
        # A tilt moves energy between bands; keep the total so intensity means the same for every preset.
        rms[1:] = tilted * rms[1:].norm() / tilted.norm()
        # The measured RMS averages over every pixel, static ones included; concentrate it on what moves.
        boost = 1.0 / mobility.pow(2).mean().sqrt().clamp(min=0.4)

        guide = cues.guide
        if mask is not None:
            small_mask = F.interpolate(mask.detach().float().cpu(), size=(wh, ww), mode="area")
            guide = torch.cat([guide, 2 * small_mask], dim=1)  # a mask's edge is an object boundary too
        generator = torch.Generator().manual_seed(int(seed))
        fields = coherent_fields(guide, self._lengths(preset, max(wh, ww)), preset.anisotropy, generator)
        fields = F.interpolate(fields, size=(wh, ww), mode="bilinear", align_corners=False)
        fields = torch.complex(fields[0, 0::2], fields[0, 1::2]).view(self.num_bins - 1, 2, wh, ww)

        yy, xx = torch.meshgrid(torch.arange(wh, dtype=torch.float32), torch.arange(ww, dtype=torch.float32),
                                indexing="ij")
        travel = math.radians(preset.travel_angle_deg)
        along_travel = xx * math.cos(travel) + yy * math.sin(travel)
        speed_px = preset.travel_speed * max(wh, ww)
        coeffs = torch.zeros(1, self.num_bins, 2, wh, ww, dtype=torch.complex64)
        for k in range(1, self.num_bins):
            along, sideways = fields[k - 1, 0], fields[k - 1, 1]
            gust_share = preset.gust_share * math.exp(-(k - 1) / 3)
            gust = torch.complex(*torch.randn(2, generator=generator)) / math.sqrt(2)
            along = math.sqrt(gust_share) * gust + math.sqrt(1 - gust_share) * along
            amplitude = float(rms[k]) * boost * preset.amplitude * intensity * mobility[0, 0]
            band = amplitude * (along * direction[0] + preset.sideways * sideways * across[0])
            if speed_px > 0:
                hz = k * self.fps / self.period
                band = band * torch.polar(torch.ones_like(along_travel), -2 * math.pi * hz * along_travel / speed_px)
            coeffs[0, k] = band
        coeffs[:, 0] = at_rest_dc(coeffs)
        return coeffs

    def _lengths(self, preset: Preset, side: int) -> list[float]:
        """Coherence length (pixels of the work grid) per non-DC bin."""
        return [preset.length_scale * coherence_length(side, k) for k in range(1, self.num_bins)]


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


@contextmanager
def _one_cpu_thread():
    """The prior is a long chain of small CPU ops on a small grid: extra intra-op threads only add
    synchronisation (several times slower on a busy machine), so run it on one and restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def coherent_fields(guide: torch.Tensor, lengths: list[float], anisotropy: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Edge-aware Gaussian random fields, [1, 4 * len(lengths), fh, fw] on the field grid (CPU).

    Four fields per length (two complex ones). White noise is smoothed by the domain-transform recursive
    filter guided by `guide` [1, C, h, w]: correlated over about `length` pixels of the guide's grid inside
    one object, nearly independent across strong colour edges. Each field has unit variance everywhere
    (the local variance, itself estimated edge-aware, is divided out), so small objects move as much as
    large ones.
    """
    _, _, gh, gw = guide.shape
    fh, fw = imageops.work_size(gh, gw, FIELD_LONG_SIDE)
    scale = fw / gw
    guide = F.interpolate(guide, size=(fh, fw), mode="area") if (fh, fw) != (gh, gw) else guide
    base = torch.tensor(lengths, dtype=torch.float32).repeat_interleave(4) * scale
    sigma_x = (base * math.sqrt(anisotropy)).clamp(min=0.5)
    sigma_y = (base / math.sqrt(anisotropy)).clamp(min=0.5)
    noise = torch.randn(base.numel(), fh, fw, generator=generator)
    step_x = guide[0, :, :, 1:].sub(guide[0, :, :, :-1]).abs().sum(0)  # [fh, fw-1]
    step_y = guide[0, :, 1:, :].sub(guide[0, :, :-1, :]).abs().sum(0)  # [fh-1, fw]
    fields = _domain_transform(noise, sigma_x, sigma_y, step_x, step_y)
    # The four fields of one length share their variance: estimate it once per length.
    power = _domain_transform(fields.pow(2).view(-1, 4, fh, fw).mean(1), sigma_x[::4], sigma_y[::4], step_x, step_y)
    fields = fields / power.clamp(min=1e-12).sqrt().repeat_interleave(4, dim=0)
    return imageops.gaussian_blur(fields.unsqueeze(0), SEAM_BLUR)


def _domain_transform(x: torch.Tensor, sigma_x: torch.Tensor, sigma_y: torch.Tensor,
                      step_x: torch.Tensor, step_y: torch.Tensor) -> torch.Tensor:
    """Recursive-filter domain transform of [N, h, w] with per-channel spatial sigmas (pixels)."""
    n = FILTER_ITERATIONS
    out = x
    for i in range(n):
        # Sigma of this iteration, so that the iterations add up to the requested one.
        shrink = math.sqrt(3) * 2 ** (n - i - 1) / math.sqrt(4 ** n - 1)
        # Feedback a^d with d = 1 + (sigma_s / sigma_r) * step; sigma_s / sigma_iter = 1 / shrink for all channels.
        edge_x = torch.exp(-math.sqrt(2) / shrink * step_x / EDGE_SIGMA)
        edge_y = torch.exp(-math.sqrt(2) / shrink * step_y / EDGE_SIGMA)
        base_x = torch.exp(-math.sqrt(2) / (shrink * sigma_x)).view(-1, 1, 1)
        base_y = torch.exp(-math.sqrt(2) / (shrink * sigma_y)).view(-1, 1, 1)
        out = _recursive_pass(out.permute(2, 0, 1), (base_x.permute(1, 0, 2) * edge_x.t().unsqueeze(1)))
        out = out.permute(1, 2, 0)
        out = _recursive_pass(out.permute(1, 0, 2), (base_y.permute(1, 0, 2) * edge_y.unsqueeze(1)))
        out = out.permute(1, 0, 2)
    return out.contiguous()


def _recursive_pass(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Causal then anti-causal first-order filter along dim 0 of [L, ...]; weights [L-1, ...] link i to i+1."""
    out = x.contiguous().clone()
    for i in range(1, out.shape[0]):
        out[i] += weights[i - 1] * (out[i - 1] - out[i])
    for i in range(out.shape[0] - 2, -1, -1):
        out[i] += weights[i] * (out[i + 1] - out[i])
    return out
