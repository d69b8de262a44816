"""Frequency-adaptive normalization (paper §2, Eq. 4) and its exact inverse.

Choices where the paper is silent (recorded here, the one place they live):
- "magnitude" is the magnitude of each real component (Re x, Im x, Re y, Im y), because the signed
  square root is applied per real scalar; the imaginary part of DC, zero for any real trajectory,
  is left out of the percentile.
- one scale per frequency, shared by x and y.
- scales are in pixels of a reference grid for a reference window length; a volume on another grid
  or window is normalised with the scales multiplied by (width / reference width) * (period / reference
  period), since displacement grows with the grid and unnormalised FFT sums grow with the window.
"""
from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .. import checks
from .volume import DEFAULT_BINS, SpectralVolume

# How the measured spectrum reads: its RMS pools the real and imaginary parts of x and y (the source's
# `fft_std` is the root of the mean square over those four real components of every coefficient). So each real
# component of a bin above DC has RMS `rms`, and a pixel's two axes together carry MEASURED_COMPONENTS * rms^2
# per bin; DC is real, so its two real components carry all of it (RMS sqrt(2) * rms each).
MEASURED_COMPONENTS = 4
# 95th percentile of |N(0, s^2)| is 1.96 s.
_Z95 = 1.959964


@lru_cache(maxsize=1)
def natural_motion_spectrum() -> dict:
    """Measured per-bin RMS of real plant-in-wind spectra (see the file's own provenance)."""
    return json.loads((Path(__file__).resolve().parent.parent / "assets" / "natural_motion_spectrum.json").read_text())


@dataclasses.dataclass(frozen=True)
class FrequencyNormalization:
    scales: tuple[float, ...]  # one per bin, pixels of the reference grid
    width: int = 256
    period: int = 150

    @classmethod
    def default(cls, num_bins: int = DEFAULT_BINS) -> "FrequencyNormalization":
        data = natural_motion_spectrum()
        rms = data["rms_per_bin"]
        if num_bins > len(rms):
            raise ValueError(f"natural spectrum has {len(rms)} bins, {num_bins} requested")
        scales = [_Z95 * rms[0] * math.sqrt(2.0)] + [_Z95 * r for r in rms[1:num_bins]]
        return cls(tuple(scales), width=int(data["width"]), period=int(data["frames_in_window"]))

    @classmethod
    def from_volumes(cls, volumes, percentile: float = 95.0, max_samples_per_bin: int = 4_000_000,
                     seed: int = 0) -> "FrequencyNormalization":
        """Recompute scales as the given percentile of component magnitudes over a set of volumes."""
        volumes = list(volumes)
        if not volumes:
            raise ValueError("from_volumes needs at least one spectral volume")
        ref = volumes[0]
        per_bin: list[list[np.ndarray]] = [[] for _ in range(ref.num_bins)]
        for v in volumes:
            if v.num_bins != ref.num_bins or v.period != ref.period or v.width != ref.width:
                raise ValueError("all volumes must share bins, period and width to share one normalization")
            comps = torch.view_as_real(v.coeffs.detach().cpu()).abs()  # [B, K, 2, H, W, 2]
            for k in range(v.num_bins):
                part = comps[:, k, ..., 0] if k == 0 else comps[:, k]
                per_bin[k].append(part.reshape(-1).numpy())
        rng = np.random.default_rng(seed)
        scales = []
        for values in per_bin:
            flat = np.concatenate(values)
            if flat.size > max_samples_per_bin:
                flat = rng.choice(flat, max_samples_per_bin, replace=False)
            scales.append(float(max(np.percentile(flat, percentile), 1e-8)))
        return cls(tuple(scales), width=ref.width, period=ref.period)

    def scales_at(self, num_bins: int, width: int, period: int) -> torch.Tensor:
        """The per-bin scales [K] (float64) for a volume of `num_bins` bins on a `width`-wide grid over `period`."""
        if num_bins > len(self.scales):
            raise ValueError(f"normalization has {len(self.scales)} bins, volume has {num_bins}")
        factor = (width / self.width) * (period / self.period)
        return torch.tensor(self.scales[:num_bins], dtype=torch.float64) * factor

    def scales_for(self, volume: SpectralVolume) -> torch.Tensor:
        return self.scales_at(volume.num_bins, volume.width, volume.period)

    def normalize(self, volume: SpectralVolume) -> torch.Tensor:
        """Real [B, 4K, H, W] tensor: sign(x) * sqrt(|x / s_k|) per component."""
        channels = volume.to_channels()
        s = self.scales_for(volume).to(channels.device, channels.dtype).repeat_interleave(4).view(1, -1, 1, 1)
        scaled = channels / s
        return torch.sign(scaled) * scaled.abs().sqrt()

    def denormalize_channels(self, normalized: torch.Tensor, period: int, width: int | None = None) -> torch.Tensor:
        """Exact (and differentiable) inverse of normalize on channels [B, 4K, H, W]: sign(y) * y^2 * s_k."""
        s = self.scales_at(normalized.shape[1] // 4, width or normalized.shape[-1], period)
        s = s.to(normalized.device, normalized.dtype).repeat_interleave(4).view(1, -1, 1, 1)
        return torch.sign(normalized) * normalized.pow(2) * s

    def denormalize(self, normalized: torch.Tensor, fps: float, period: int, width: int | None = None) -> SpectralVolume:
        return SpectralVolume.from_channels(self.denormalize_channels(normalized, period, width), fps=fps, period=period)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    def validate(self) -> "FrequencyNormalization":
        """Positive scales on a real grid (what formats.read_config checks after reading one)."""
        if not self.scales:
            raise ValueError("normalization.scales: expected one scale per frequency bin, got none")
        for i, scale in enumerate(self.scales):
            checks.number(f"normalization.scales[{i}]", scale, above=0.0)
        checks.integer("normalization.width", self.width, minimum=1)
        checks.integer("normalization.period", self.period, minimum=1)
        return self
