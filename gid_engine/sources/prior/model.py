"""The procedural prior itself: picture (and optional mask and motion brush) in, spectral volume out."""
from __future__ import annotations

import dataclasses
import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ... import imageops
from ...spectral.normalization import MEASURED_COMPONENTS, natural_motion_spectrum
from ...spectral.volume import DEFAULT_BINS, DEFAULT_FPS, DEFAULT_PERIOD, SpectralVolume, at_rest_dc, coherence_length
from .brush import MotionBrush
from .cues import MotionCues
from .fields import coherent_fields
from .mobility import anchor_growth, mobility as mobility_of, tip_gain
from .presets import DEFAULT_PRESET, PRESETS, Preset, preset_named
from .structure import sway_direction
from .subjects import subject_mask

# Cues are read at this long side.
WORK_LONG_SIDE = 384
# The volume's long side at most (pixels); 1920x1080 and smaller pictures get a volume at their own size.
OUTPUT_LONG_SIDE = 2048
# Subjects (people, animals, objects) are looked for at this long side: faces need more pixels than textures.
SUBJECT_LONG_SIDE = 640
# The measured spectrum averages over every pixel of real plant clips, still ones included; plants fill about
# this share of those frames, so a fully free pixel moves 1 / sqrt(share) times the measured RMS.
MEASURED_MOVING_SHARE = 0.5
# The measured figure is a mean square over plant pixels, tips and insides alike: the picture's moving pixels get
# that mean square (soft cues and anchoring shape the motion without shrinking it), never boosted more than
# 1 / FREE_FLOOR.
FREE_FLOOR = 0.35
# ... and only where the moving pixels cover at least the first share of the picture (fully from the second).
FREE_SHARE = (0.002, 0.01)
# Bending waves climb a plant at BEND_SPEED picture heights per second; the lag saturates at BEND_LAG heights.
BEND_SPEED = 0.8
BEND_LAG = 0.25
# How open water below a mirrored waterline moves in the auto preset.
RIPPLES = PRESETS["water ripples"]


@dataclasses.dataclass(frozen=True)
class ProceduralPrior:
    name: str = "procedural motion prior"
    num_bins: int = DEFAULT_BINS
    fps: float = DEFAULT_FPS
    period: int = DEFAULT_PERIOD
    preset: str = DEFAULT_PRESET
    brush: MotionBrush = MotionBrush()

    def __post_init__(self):
        preset_named(self.preset)

    def predict(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None,
                intensity: float = 1.0, progress=None) -> SpectralVolume:
        """image [B, 3, H, W] in 0..1; mask [B or 1, 1, H, W], 1 = may move (0 gives exactly no motion)."""
        return self.predict_with_mobility(image, seed=seed, mask=mask, intensity=intensity, progress=progress)[0]

    def predict_with_mobility(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None,
                              intensity: float = 1.0, progress=None) -> tuple[SpectralVolume, torch.Tensor]:
        """The volume and the mobility it was built on, [B, 1, H, W] in 0..1 at the picture's size (the
        amplitude envelope: cues, subjects, anchoring, the motion brush and the mask together)."""
        b, _, h, w = image.shape
        if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or tuple(mask.shape[-2:]) != (h, w)
                                 or mask.shape[0] not in (1, b)):
            raise ValueError(f"mask: expected [1 or {b}, 1, {h}, {w}], got {tuple(mask.shape)}")
        oh, ow = imageops.work_size(h, w, OUTPUT_LONG_SIDE)
        coeffs = None
        mobilities = []
        for i in range(b):
            one_mask = None if mask is None else mask[min(i, mask.shape[0] - 1):][:1]
            with _one_cpu_thread():
                small, envelope = self._predict_one(image[i:i + 1], seed + i, intensity, one_mask)
            one = self._volume(small.to(image.device)).resize(oh, ow).coeffs
            if b == 1:
                coeffs = one
            else:  # written into the batch as it comes: no list of copies
                if coeffs is None:
                    coeffs = one.new_empty((b, *one.shape[1:]))
                coeffs[i] = one[0]
            del one
            mobilities.append(F.interpolate(envelope, size=(h, w), mode="bilinear", align_corners=False))
            if progress is not None:
                progress(i + 1, b)
        mobility = torch.cat(mobilities).clamp(0, 1).to(image.device)  # bilinear overshoot only
        if mask is not None:
            grid_mask = mask.to(image.device, torch.float32)
            mobility = mobility * grid_mask
            if (oh, ow) != (h, w):
                grid_mask = F.interpolate(grid_mask, size=(oh, ow), mode="area")  # 0 stays 0 where all of it is
            coeffs.mul_(grid_mask.unsqueeze(1))
        volume = SpectralVolume(coeffs, fps=self.fps, period=self.period,
                                metadata={"source": self.name, "preset": self.preset, "seed": seed,
                                          "intensity": intensity})
        return volume, mobility

    def _volume(self, coeffs: torch.Tensor) -> SpectralVolume:
        return SpectralVolume(coeffs, fps=self.fps, period=self.period)

    def _predict_one(self, image: torch.Tensor, seed: int, intensity: float,
                     mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients [1, K, 2, wh, ww] and the amplitude envelope [1, 1, wh, ww] on the work grid."""
        preset = preset_named(self.preset)
        _, _, h, w = image.shape
        wh, ww = imageops.work_size(h, w, WORK_LONG_SIDE)
        picture = image.detach().float().cpu()
        small = F.interpolate(picture, size=(wh, ww), mode="area")
        cues = MotionCues(small)
        dh, dw = imageops.work_size(h, w, SUBJECT_LONG_SIDE)
        subjects = F.interpolate(subject_mask(F.interpolate(picture, size=(dh, dw), mode="area")),
                                 size=(wh, ww), mode="area")
        envelope = mobility_of(cues, preset.mobility, subjects)
        # Open water below a mirrored waterline ripples in place (the water preset's character) among plants
        # that sway.
        ripple = cues.water_surface if preset.mobility == "auto" and bool(cues.water_surface.any()) else None
        if preset.anchored:
            plants = envelope if ripple is None else envelope * (1 - ripple)
            growth = anchor_growth(plants, cues.sky)
            shape = growth * tip_gain(plants)
            if ripple is not None:
                growth = growth * (1 - ripple)  # no bending lag on water
                shape = shape + (1 - shape) * ripple
            envelope = envelope * shape
        else:
            growth = torch.ones_like(envelope)
        direction = sway_direction(cues, preset)
        gain = torch.ones_like(envelope)
        if not self.brush.is_empty:
            guidance = self.brush.guidance(wh, ww)
            envelope = guidance.apply_mobility(envelope)
            direction = guidance.apply_direction(direction)
            gain = guidance.gain
        across = torch.cat([-direction[:, 1:2], direction[:, 0:1]], dim=1)

        data = natural_motion_spectrum()
        rms = torch.tensor(data["rms_per_bin"][:self.num_bins], dtype=torch.float32)
        rms = rms * (ww / data["width"]) * (self.period / data["frames_in_window"])
        tilted = rms[1:] * torch.exp(preset.spectral_tilt * torch.arange(self.num_bins - 1, dtype=torch.float32))
        # A tilt moves energy between bands; keep the total so intensity means the same for every preset.
        rms[1:] = tilted * rms[1:].norm() / tilted.norm()
        boost = 1.0 / (math.sqrt(MEASURED_MOVING_SHARE) * free_level(envelope))

        guide = cues.guide
        if mask is not None:
            small_mask = F.interpolate(mask.detach().float().cpu(), size=(wh, ww), mode="area")
            guide = torch.cat([guide, 2 * small_mask], dim=1)  # a mask's edge is an object boundary too
        generator = torch.Generator().manual_seed(int(seed))
        fields = self._fields(guide, preset, generator)
        if ripple is not None:
            # One water surface: its ripples run across the edges of what it mirrors.
            water_fields = self._fields(guide * (1 - ripple), RIPPLES, generator)

        yy, xx = torch.meshgrid(torch.arange(wh, dtype=torch.float32), torch.arange(ww, dtype=torch.float32),
                                indexing="ij")
        along_travel = _along(preset.travel_angle_deg, yy, xx)
        speed_px = preset.travel_speed * max(wh, ww)
        # Bending travels up a plant from where it is held: tips lag their base (phase grows along the stem).
        lag_px = growth[0, 0] * (BEND_LAG * wh) if preset.anchored else None
        if ripple is not None:
            ripple_travel = _along(RIPPLES.travel_angle_deg, yy, xx)
            ripple_speed = RIPPLES.travel_speed * max(wh, ww)
            ripple_axis = torch.tensor(_unit(RIPPLES.wind_angle_deg)).view(2, 1, 1)
            ripple_across = torch.tensor(_unit(RIPPLES.wind_angle_deg + 90)).view(2, 1, 1)
        coeffs = torch.zeros(1, self.num_bins, 2, wh, ww, dtype=torch.complex64)
        for k in range(1, self.num_bins):
            along, sideways = fields[k - 1, 0], fields[k - 1, 1]
            gust_share = preset.gust_share * math.exp(-(k - 1) / 3)
            gust = torch.complex(*torch.randn(2, generator=generator)) / math.sqrt(2)  # as strong as the fields
            along = math.sqrt(gust_share) * gust + math.sqrt(1 - gust_share) * along
            # A free pixel's two axes carry the measured power together, whatever the fields' own variance.
            power = along.abs().pow(2).mean() + preset.sideways ** 2 * sideways.abs().pow(2).mean()
            unit = math.sqrt(MEASURED_COMPONENTS / float(power.clamp(min=1e-12)))
            amplitude = float(rms[k]) * unit * boost * preset.amplitude * intensity * (envelope * gain)[0, 0]
            band = amplitude * (along * direction[0] + preset.sideways * sideways * across[0])
            hz = k * self.fps / self.period
            if speed_px > 0:
                band = band * torch.polar(torch.ones_like(along_travel), -2 * math.pi * hz * along_travel / speed_px)
            if lag_px is not None:
                band = band * torch.polar(torch.ones_like(lag_px), -2 * math.pi * hz * lag_px / (BEND_SPEED * wh))
            if ripple is not None:
                bob = water_fields[k - 1, 0] * ripple_axis + RIPPLES.sideways * water_fields[k - 1, 1] * ripple_across
                waves = torch.polar(torch.ones_like(ripple_travel), -2 * math.pi * hz * ripple_travel / ripple_speed)
                bob = amplitude * (RIPPLES.amplitude / preset.amplitude) * bob * waves  # ripples, smaller than sway
                band = band + (bob - band) * ripple[0, 0]
            coeffs[0, k] = band
        coeffs[:, 0] = at_rest_dc(coeffs)
        return coeffs, envelope * gain

    def _fields(self, guide: torch.Tensor, preset: Preset, generator: torch.Generator) -> torch.Tensor:
        """Complex random fields [K - 1, 2, h, w] on the guide's grid, coherent inside its objects."""
        _, _, h, w = guide.shape
        fields = coherent_fields(guide, self._lengths(preset, max(h, w)), preset.anisotropy, generator)
        fields = F.interpolate(fields, size=(h, w), mode="bilinear", align_corners=False)
        return torch.complex(fields[0, 0::2], fields[0, 1::2]).view(self.num_bins - 1, 2, h, w)

    def _lengths(self, preset: Preset, side: int) -> list[float]:
        """Coherence length (pixels of the work grid) per non-DC bin."""
        return [preset.length_scale * coherence_length(side, k) for k in range(1, self.num_bins)]


def _unit(angle_deg: float) -> tuple[float, float]:
    return math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))


def _along(angle_deg: float, yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
    """Distance (pixels) along the direction angle_deg (image coordinates: 0 = right, 90 = down)."""
    cos, sin = _unit(angle_deg)
    return xx * cos + yy * sin


def free_level(envelope: torch.Tensor) -> float:
    """The RMS envelope of the picture's moving pixels (at least FREE_FLOOR), eased to 1 (no boost) as they
    shrink below FREE_SHARE of the picture: a few faint specks are doubt, not plants held back by anchoring."""
    moving = envelope[envelope > 0.1]
    if moving.numel() == 0:
        return 1.0
    level = max(FREE_FLOOR, float(moving.pow(2).mean().sqrt()))
    share = float(imageops.smoothstep(FREE_SHARE[0], FREE_SHARE[1], torch.tensor(moving.numel() / envelope.numel())))
    return share * level + (1 - share)


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
