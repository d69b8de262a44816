"""Trajectories <-> spectral volume, and the motion texture: displacement fields at any time."""
from __future__ import annotations

import dataclasses
import math
from functools import cached_property, partial
from typing import Iterator

import torch

from .. import checks
from ..imageops import work_size
from .volume import DEFAULT_BINS, SpectralVolume, synthesis_weights

# Fields of one chunk stay below this many bytes, so long or large textures never sit in memory whole.
DEFAULT_CHUNK_BYTES = 256 * 1024 * 1024

# Frame rates and frame counts of everything made of frames (motion textures, loops, loop files): 240 fps is the
# fastest common display rate (and animated previews store whole milliseconds per frame); 100000 frames is 55
# minutes at 30 fps. Hosts show these ranges on their inputs.
FPS = checks.Range(0.1, 240.0)
FRAMES = checks.Range(1, 100000, whole=True)
SPEED = checks.Range(0.0, 100.0)
START_SECONDS = checks.Range(0.0, 3600.0)


def trajectories_to_spectral_volume(displacements: torch.Tensor, fps: float, num_bins: int = DEFAULT_BINS,
                                    metadata: dict | None = None) -> SpectralVolume:
    """FFT of per-pixel displacement relative to frame 0 (paper §1).

    displacements: [T, 2, H, W] or [B, T, 2, H, W], pixels; index 0 is frame 0 (normally all zero).
    """
    if displacements.ndim == 4:
        displacements = displacements.unsqueeze(0)
    if displacements.ndim != 5 or displacements.shape[2] != 2:
        raise ValueError(f"displacements must be [T, 2, H, W] or [B, T, 2, H, W], got {tuple(displacements.shape)}")
    period = displacements.shape[1]
    if period <= 2 * (num_bins - 1):
        raise ValueError(f"{num_bins} bins need more than {2 * (num_bins - 1)} frames, got {period}")
    spectrum = torch.fft.fft(displacements.to(torch.float64 if displacements.dtype == torch.float64 else torch.float32), dim=1)
    return SpectralVolume(spectrum[:, :num_bins].contiguous(), fps=float(fps), period=period,
                          metadata=dict(metadata or {}))


def synthesis_basis(num_bins: int, period: int, phases: torch.Tensor) -> torch.Tensor:
    """Complex weights [N, K] turning one-sided coefficients into real displacement.

    phases: [N, K] in cycles. Field = Re(sum_k basis[n, k] * S_k): the inverse DFT with bins >= K zero
    and the conjugate half folded in (factor 2 for k >= 1).
    """
    weights = synthesis_weights(num_bins, period, torch.float64, phases.device)
    angle = 2.0 * math.pi * phases.to(torch.float64)
    return torch.polar(weights.expand_as(angle), angle)


def real_coefficients(volume: SpectralVolume) -> torch.Tensor:
    """The volume's coefficients as one real matrix [2K, B * 2 * H * W]: real parts, then imaginary parts.

    Synthesis is then a single real matmul over contiguous rows (BLAS on CPU would otherwise copy the
    strided real and imaginary views of the complex tensor on every call, which cost more than the product).
    """
    b, k, _, h, w = volume.coeffs.shape
    real_dtype = torch.float64 if volume.coeffs.dtype == torch.complex128 else torch.float32  # half is too coarse
    flat = volume.coeffs.permute(1, 0, 2, 3, 4).reshape(k, b * 2 * h * w)
    return torch.cat([flat.real.to(real_dtype), flat.imag.to(real_dtype)])


def synthesize(volume: SpectralVolume, basis: torch.Tensor, coefficients: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Displacement fields [N, B, 2, H, W] for the N rows of `basis` [N, K].

    coefficients: real_coefficients(volume), when the caller keeps it across calls.
    """
    b, k, _, h, w = volume.coeffs.shape
    if coefficients is None:
        coefficients = real_coefficients(volume)
    basis = basis.to(volume.device)
    # Re(E S) = Re E Re S - Im E Im S, as one real matmul (much faster than a complex einsum on CPU).
    weights = torch.cat([basis.real, -basis.imag], dim=1).to(coefficients.dtype)
    return (weights @ coefficients).reshape(-1, b, 2, h, w)


def displacement_at(volume: SpectralVolume, times) -> torch.Tensor:
    """Displacement [N, B, 2, H, W] at times given in frames of the volume's own sampling (fractional allowed)."""
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    k = torch.arange(volume.num_bins, dtype=torch.float64)
    phases = times[:, None] * k[None, :] / volume.period
    return synthesize(volume, synthesis_basis(volume.num_bins, volume.period, phases))


@dataclasses.dataclass(frozen=True)
class MotionTexture:
    """A lazily evaluated sequence of displacement fields, one per output frame.

    Frame n of the texture shows the volume at phase `rates[k] * n + offsets[k]` cycles for bin k.
    With `anchored`, the field of frame 0 is subtracted from every frame, so frame 0 is the picture itself.
    """

    volume: SpectralVolume
    frame_count: int
    fps: float
    rates: torch.Tensor  # [K] cycles per output frame, float64
    offsets: torch.Tensor  # [K] cycles, float64
    anchored: bool = False

    @classmethod
    def from_volume(cls, volume: SpectralVolume, frame_count: int, fps: float, speed: float = 1.0,
                    start_s: float = 0.0, loop: bool = True, anchored: bool = False,
                    calm_start: bool = False) -> "MotionTexture":
        """Sample `volume` at `fps` for `frame_count` frames.

        speed scales time (0.5 = slow motion, the paper's fractional-time evaluation). With `loop`, each
        band's frequency is snapped to a whole number of cycles over the clip (at least one for every
        non-DC band), so the last frame wraps to the first as smoothly as any other pair of frames.
        With `calm_start` (looping only), the loop starts, after `start_s`, at its calmest moment, so the
        restart falls where the motion is slowest.
        """
        frame_count, fps = FRAMES.check("frames", frame_count), FPS.check("fps", fps)
        speed, start_s = SPEED.check("speed", speed), START_SECONDS.check("start_seconds", start_s)
        k = torch.arange(volume.num_bins, dtype=torch.float64)
        hz = k * volume.fps / volume.period * speed
        rates = hz / fps
        if loop and speed > 0:
            cycles = torch.round(rates * frame_count)
            cycles[1:] = cycles[1:].clamp(min=1.0)
            rates = cycles / frame_count
        offsets = hz * start_s
        if calm_start and loop and frame_count > 2:
            offsets = offsets + rates * _calmest_frame(volume, rates, offsets, frame_count)
        return cls(volume, int(frame_count), float(fps), rates, offsets, anchored)

    @property
    def height(self) -> int:
        return self.volume.height

    @property
    def width(self) -> int:
        return self.volume.width

    @property
    def batch(self) -> int:
        return self.volume.batch

    def replace(self, **changes) -> "MotionTexture":
        return dataclasses.replace(self, **changes)

    @cached_property
    def _coefficients(self) -> torch.Tensor:
        # Built once per texture: every chunk of a render reuses it (the volume's size again in memory).
        return real_coefficients(self.volume)

    def _synthesize(self, phases: torch.Tensor) -> torch.Tensor:
        basis = synthesis_basis(self.volume.num_bins, self.volume.period, phases)
        return synthesize(self.volume, basis, self._coefficients)

    def frame_phases(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.to(torch.float64)[:, None] * self.rates[None, :] + self.offsets[None, :]

    def fields(self, start: int, stop: int) -> torch.Tensor:
        """Displacement fields [n, B, 2, H, W] for output frames start..stop-1."""
        frames = torch.arange(start, stop, dtype=torch.float64)
        out = self._synthesize(self.frame_phases(frames))
        if self.anchored:
            out = out - self.fields_at_zero()
            if start == 0:
                out[0] = 0  # exactly the picture, whatever the rounding of the subtraction
        return out

    def fields_at_zero(self) -> torch.Tensor:
        zero = torch.zeros(1, dtype=torch.float64)
        return self._synthesize(self.frame_phases(zero))

    def chunk_frames(self, max_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
        per_frame = self.batch * 2 * self.height * self.width * 4
        return max(1, min(self.frame_count, max_bytes // max(per_frame, 1)))

    def chunks(self, max_frames: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (first frame index, fields [n, B, 2, H, W]) covering all frames."""
        step = max_frames or self.chunk_frames()
        for start in range(0, self.frame_count, step):
            yield start, self.fields(start, min(start + step, self.frame_count))

    def mean_magnitude(self, max_samples: int = 64) -> torch.Tensor:
        """Time-averaged flow magnitude [B, 1, H, W]: the paper's splatting weight (depth proxy).

        Averaged over up to `max_samples` evenly spaced frames of the texture; for a looping texture
        that is an unbiased sample of the full average.
        """
        count = min(self.frame_count, max_samples)
        frames = torch.linspace(0, self.frame_count - 1, count, dtype=torch.float64) if count > 1 else torch.zeros(1, dtype=torch.float64)
        basis = synthesis_basis(self.volume.num_bins, self.volume.period, self.frame_phases(frames))
        total = None
        at_zero = self.fields_at_zero() if self.anchored else None
        step = max(1, self.chunk_frames() // 2)
        for i in range(0, count, step):
            fields = synthesize(self.volume, basis[i:i + step], self._coefficients)
            if at_zero is not None:
                fields -= at_zero
            mag = torch.hypot(fields[:, :, 0], fields[:, :, 1]).sum(dim=0)
            total = mag if total is None else total + mag
        return (total / count).unsqueeze(1).float()


def _calmest_frame(volume: SpectralVolume, rates: torch.Tensor, offsets: torch.Tensor, frame_count: int,
                   candidates: int = 512) -> int:
    """Frame s of a looping texture whose step from frame s - 1 moves the pixels least (on a small grid)."""
    small = volume.resize(*work_size(volume.height, volume.width, 64))
    frames = torch.linspace(0, frame_count - 1, min(frame_count, candidates), dtype=torch.float64).round().unique()
    basis = partial(synthesis_basis, small.num_bins, small.period)
    now = synthesize(small, basis(frames[:, None] * rates + offsets))
    before = synthesize(small, basis((frames[:, None] - 1) * rates + offsets))
    step = (now - before).pow(2).sum(dim=2).sqrt().mean(dim=(1, 2, 3))
    return int(frames[int(step.argmin())])
