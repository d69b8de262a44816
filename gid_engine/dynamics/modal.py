"""A spectral volume read as an image-space modal basis (paper §5, Eq. 6; Davis et al. 2015).

Bin k (k >= 1; DC is an offset, not an oscillation) of any spectral volume gives two real mode shapes,
phi_(k,re) = (2/period) Re S_k and phi_(k,im) = (2/period) Im S_k, both of angular frequency
omega_k = 2 pi k fps / period. With real modal coordinates x, the displacement is
    D(p, t) = sum_m phi_m(p) x_m(t) = Re(sum_k S_k(p) q_k(t)),   q_k = (2/period) (x_(k,re) - i x_(k,im)),
which is Eq. 6 with complex modal coordinates. The 2/period factor makes x = 1 reproduce the bin's own
displacement amplitude, so every mode has unit mass and stiffness omega^2.

Pulled state (least squares): the modal coordinates for "point p moved by d" are the minimum-norm solution
of Phi(p) x = d (Phi(p) is the 2 x M matrix of mode shapes at p), with a small Tikhonov term:
    x = Phi(p)^T (Phi(p) Phi(p)^T + lambda^2 I)^-1 d.
Over time the volume's own motion has covariance Cov(D(q), D(p)) = 1/2 Phi(q) Phi(p)^T, so the pulled field
Phi(q) x is the linear regression of the displacement at q on the displacement at p: every pixel follows
as strongly as it moved together with p in the spectral volume, pixels that never move stay exactly still.
lambda = REGULARISATION x the 95th percentile of the per-pixel motion amplitude keeps pulls on nearly still
points from blowing up the whole picture (the coordinates stay below |d| / (2 lambda)); where a point moves
at least a tenth as much as the picture's moving parts in the pulled direction, it lands within 4 % of d.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from ..spectral.volume import SpectralVolume

REGULARISATION = 0.02


@dataclasses.dataclass(frozen=True)
class ModalBasis:
    """The real modes of one spectral volume, read straight from its coefficients (nothing is copied, so a 4K
    volume costs no extra memory): mode 2(k-1) is (2/period) Re S_k, mode 2(k-1)+1 is (2/period) Im S_k."""

    volume: SpectralVolume
    omegas: torch.Tensor  # [M] rad/s, float64
    bins: tuple[int, ...]  # bin of each mode
    parts: tuple[str, ...]  # "re" or "im" of each mode

    @classmethod
    def from_volume(cls, volume: SpectralVolume) -> "ModalBasis":
        bins = [k for k in range(1, volume.num_bins) for _ in (0, 1)]
        omegas = torch.tensor([2 * math.pi * k * volume.fps / volume.period for k in bins], dtype=torch.float64)
        return cls(volume, omegas, tuple(bins), ("re", "im") * (volume.num_bins - 1))

    @property
    def count(self) -> int:
        return len(self.bins)

    @property
    def scale(self) -> float:
        return 2.0 / self.volume.period

    def shapes(self, coeffs: torch.Tensor | None = None) -> torch.Tensor:
        """Mode shapes [B, M, 2, ...] of `coeffs` (default: the volume's, [B, K, 2, H, W]) as real tensors."""
        coeffs = self.volume.coeffs if coeffs is None else coeffs
        parts = torch.stack([coeffs[:, 1:].real, coeffs[:, 1:].imag], dim=2)  # [B, K-1, re/im, 2, ...]
        return parts.flatten(1, 2).to(torch.float64) * self.scale

    def at(self, point: tuple[float, float]) -> torch.Tensor:
        """Mode shapes at the point (fractions of width and height), bilinear with pixel centres at
        (i + 0.5) / size and the border held: [B, 2, M] float64."""
        h, w = self.volume.height, self.volume.width
        x = min(max(point[0] * w - 0.5, 0.0), w - 1.0)
        y = min(max(point[1] * h - 0.5, 0.0), h - 1.0)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
        ax, ay = x - x0, y - y0
        c = self.volume.coeffs
        sampled = ((c[..., y0, x0] * (1 - ax) + c[..., y0, x1] * ax) * (1 - ay)
                   + (c[..., y1, x0] * (1 - ax) + c[..., y1, x1] * ax) * ay)  # [B, K, 2]
        return self.shapes(sampled.to(torch.complex128)).transpose(1, 2)

    def amplitude(self) -> torch.Tensor:
        """Per-pixel motion amplitude sqrt(sum_m |phi_m|^2), [B, H, W] (accumulated bin by bin)."""
        total = torch.zeros(self.volume.batch, self.volume.height, self.volume.width, device=self.volume.device)
        for k in range(1, self.volume.num_bins):
            total += self.volume.coeffs[:, k].abs().float().pow(2).sum(dim=1)
        return total.sqrt() * self.scale

    def regularisation(self) -> torch.Tensor:
        """lambda per picture [B] (pixels): a fraction of the 95th-percentile motion amplitude."""
        amp = self.amplitude().flatten(1)
        rank = max(1, math.ceil(0.95 * amp.shape[1]))
        return amp.kthvalue(rank, dim=1).values.to(torch.float64) * REGULARISATION

    def solve(self, point: tuple[float, float], target: tuple[float, float]) -> torch.Tensor:
        """Modal coordinates [B, M] (float64) whose displacement at `point` is closest to `target` (pixels)."""
        phi = self.at(point)  # [B, 2, M]
        lam = self.regularisation().to(phi.device)
        gram = phi @ phi.transpose(1, 2) + (lam ** 2)[:, None, None] * torch.eye(2, dtype=phi.dtype, device=phi.device)
        d = torch.tensor(target, dtype=torch.float64, device=phi.device).expand(phi.shape[0], 2)
        # pinv: a picture without any motion has gram = 0, and then the coordinates are exactly 0.
        return (phi.transpose(1, 2) @ (torch.linalg.pinv(gram) @ d.unsqueeze(-1))).squeeze(-1)

    def displacement(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Displacement field [B, 2, H, W] of modal coordinates [B, M]."""
        return torch.einsum("bm,bmchw->bchw", coordinates.to(torch.float64), self.shapes())

    def strongest(self, count: int) -> list[int]:
        """Indices of the `count` modes with the most motion energy over the picture (all pictures)."""
        energy = []
        for k in range(1, self.volume.num_bins):
            bin_k = self.volume.coeffs[:, k]
            energy += [float(bin_k.real.float().pow(2).sum()), float(bin_k.imag.float().pow(2).sum())]
        return sorted(torch.argsort(torch.tensor(energy), descending=True)[:count].tolist())
