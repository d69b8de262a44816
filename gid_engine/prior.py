"""A procedural spectral motion prior: natural-looking oscillation from one picture, no weights.

In the spirit of stochastic motion textures (Chuang et al. 2005) and the paper's observed spectra:
- per-bin amplitudes follow the measured natural spectrum (data/natural_motion_spectrum.json),
  rescaled to the picture's grid;
- each bin's complex coefficient is a smooth random field, coherent over a length that shrinks with
  frequency (whole branches sway slowly, leaves flutter locally), plus a scene-wide gust term for low bins;
- motion is strong where the picture has fine texture (foliage, grass, water, flames) and near zero on
  flat regions (sky, walls); it follows the picture's structure: thin, oriented things sway across
  their length, isotropic texture along the wind;
- DC is set so the displacement at t = 0 is exactly zero: frame 0 is the picture itself.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from . import imageops
from .normalization import natural_motion_spectrum
from .spectral import DEFAULT_BINS, DEFAULT_FPS, DEFAULT_PERIOD, SpectralVolume

WORK_LONG_SIDE = 384


@dataclasses.dataclass(frozen=True)
class ProceduralPrior:
    name: str = "procedural motion prior"
    num_bins: int = DEFAULT_BINS
    fps: float = DEFAULT_FPS
    period: int = DEFAULT_PERIOD
    wind_angle_deg: float = 0.0  # 0 = horizontal sway

    def predict(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None,
                intensity: float = 1.0, progress=None) -> SpectralVolume:
        """image [B, 3, H, W] in 0..1; mask [B or 1, 1, H, W], 1 = may move (0 gives exactly no motion)."""
        b, _, h, w = image.shape
        volumes = []
        for i in range(b):
            volumes.append(self._predict_one(image[i:i + 1], seed + i, intensity))
            if progress is not None:
                progress(i + 1, b)
        coeffs = torch.cat(volumes).to(image.device)
        if mask is not None:
            coeffs = coeffs * mask.to(image.device, torch.float32).unsqueeze(1)
        return SpectralVolume(coeffs, fps=self.fps, period=self.period,
                              metadata={"source": self.name, "seed": seed, "intensity": intensity})

    def mobility(self, image: torch.Tensor) -> torch.Tensor:
        """Where things are free to move, [1, 1, h, w] in 0..1 (fine texture and foliage colour)."""
        side = max(image.shape[-2:])
        detail_sigma = max(1.0, side / 200)
        lum = imageops.luminance(image)
        detail = lum - imageops.gaussian_blur(lum, 2 * detail_sigma)
        energy = imageops.gaussian_blur(detail * detail, 4 * detail_sigma).clamp(min=0).sqrt()
        reference = torch.quantile(energy.flatten(), 0.9).clamp(min=1e-4)
        texture = imageops.smoothstep(0.12, 0.75, energy / reference)
        r, g, bl = image[:, 0:1], image[:, 1:2], image[:, 2:3]
        foliage = ((g - 0.5 * (r + bl)) * 6).clamp(0, 1)
        mobility = texture * (0.65 + 0.35 * foliage)
        return imageops.gaussian_blur(mobility, side / 120)

    def direction(self, image: torch.Tensor) -> torch.Tensor:
        """Unit sway direction [1, 2, h, w]: across oriented structures, along the wind elsewhere."""
        side = max(image.shape[-2:])
        sigma = max(1.0, side / 200)
        lum = imageops.gaussian_blur(imageops.luminance(image), sigma)
        gx, gy = imageops.gradients(lum)
        jxx = imageops.gaussian_blur(gx * gx, 3 * sigma)
        jxy = imageops.gaussian_blur(gx * gy, 3 * sigma)
        jyy = imageops.gaussian_blur(gy * gy, 3 * sigma)
        theta = 0.5 * torch.atan2(2 * jxy, jxx - jyy)  # dominant gradient direction = across the structure
        coherence = torch.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy + 1e-8)
        across = torch.cat([torch.cos(theta), torch.sin(theta)], dim=1)
        wind_angle = math.radians(self.wind_angle_deg)
        wind = torch.tensor([math.cos(wind_angle), math.sin(wind_angle)], device=image.device).view(1, 2, 1, 1)
        alignment = (across * wind).sum(1, keepdim=True)
        across = across * torch.where(alignment < 0, -1.0, 1.0)
        # An axis has no sign: where it turns perpendicular to the wind the sign choice flips, so fade the
        # structure term out there, or neighbours would swing in opposite directions (tearing).
        c = coherence.clamp(0, 1) ** 2 * alignment.abs()
        direction = (1 - c) * wind + c * across
        return direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-6)

    def _coherent_field(self, h: int, w: int, length: float, generator: torch.Generator) -> torch.Tensor:
        """Complex Gaussian field [1, 1, h, w], unit RMS, correlated over about `length` pixels."""
        gh, gw = max(2, math.ceil(h / length) + 2), max(2, math.ceil(w / length) + 2)
        noise = torch.randn(1, 2, gh, gw, generator=generator)
        field = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=True)
        field = torch.complex(field[:, 0:1], field[:, 1:2])
        return field / field.abs().pow(2).mean().sqrt().clamp(min=1e-8)

    def _predict_one(self, image: torch.Tensor, seed: int, intensity: float) -> torch.Tensor:
        _, _, h, w = image.shape
        wh, ww = imageops.work_size(h, w, WORK_LONG_SIDE)
        small = F.interpolate(image.float().cpu(), size=(wh, ww), mode="area") if (wh, ww) != (h, w) else image.float().cpu()
        mobility = self.mobility(small)
        direction = self.direction(small)
        across = torch.cat([-direction[:, 1:2], direction[:, 0:1]], dim=1)

        data = natural_motion_spectrum()
        rms = torch.tensor(data["rms_per_bin"][:self.num_bins], dtype=torch.float32)
        rms = rms * (ww / data["width"]) * (self.period / data["frames_in_window"])
        # The measured RMS averages over every pixel, static ones included; concentrate it on what moves.
        boost = 1.0 / mobility.pow(2).mean().sqrt().clamp(min=0.4)

        generator = torch.Generator().manual_seed(int(seed))
        side = max(wh, ww)
        coeffs = torch.zeros(1, self.num_bins, 2, wh, ww, dtype=torch.complex64)
        for k in range(1, self.num_bins):
            length = side * 0.25 / (1 + 0.35 * k)
            along = self._coherent_field(wh, ww, length, generator)
            sideways = self._coherent_field(wh, ww, length, generator)
            gust_share = 0.5 * math.exp(-k / 3)
            gust = torch.complex(*torch.randn(2, generator=generator)) / math.sqrt(2)
            along = math.sqrt(gust_share) * gust + math.sqrt(1 - gust_share) * along
            amplitude = float(rms[k]) * boost * intensity * mobility
            coeffs[:, k] = amplitude * (along * direction + 0.3 * sideways * across)
        coeffs[:, 0] = -2 * coeffs[:, 1:].real.sum(dim=1)
        volume = SpectralVolume(coeffs, fps=self.fps, period=self.period).resize(h, w)
        return volume.coeffs
