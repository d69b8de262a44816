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
import torch.nn.functional as F

from ..spectral.volume import SpectralVolume

REGULARISATION = 0.02


@dataclasses.dataclass(frozen=True)
class ModalBasis:
    """Real mode shapes of one spectral volume: shapes [B, M, 2, H, W] (pixels per unit coordinate)."""

    shapes: torch.Tensor
    omegas: torch.Tensor  # [M] rad/s, float64
    bins: tuple[int, ...]  # bin of each mode
    parts: tuple[str, ...]  # "re" or "im" of each mode

    @classmethod
    def from_volume(cls, volume: SpectralVolume) -> "ModalBasis":
        scale = 2.0 / volume.period
        bins = list(range(1, volume.num_bins))
        coeffs = volume.coeffs[:, 1:]
        real_dtype = torch.float64 if coeffs.dtype == torch.complex128 else torch.float32
        shapes = torch.stack([coeffs.real, coeffs.imag], dim=2).to(real_dtype) * scale  # [B, K-1, 2, 2, H, W]
        shapes = shapes.flatten(1, 2)
        omegas = torch.tensor([2 * math.pi * k * volume.fps / volume.period for k in bins for _ in (0, 1)],
                              dtype=torch.float64)
        return cls(shapes, omegas, tuple(k for k in bins for _ in (0, 1)), ("re", "im") * len(bins))

    @property
    def count(self) -> int:
        return self.shapes.shape[1]

    def at(self, point: tuple[float, float]) -> torch.Tensor:
        """Mode shapes at the point (fractions of width and height), bilinear: [B, 2, M] float64."""
        b, m, _, h, w = self.shapes.shape
        grid = torch.tensor([[[[point[0] * 2 - 1, point[1] * 2 - 1]]]], dtype=self.shapes.dtype,
                            device=self.shapes.device).expand(b, 1, 1, 2)
        sampled = F.grid_sample(self.shapes.reshape(b, m * 2, h, w), grid, mode="bilinear",
                                padding_mode="border", align_corners=False)
        return sampled.reshape(b, m, 2).transpose(1, 2).to(torch.float64)

    def amplitude(self) -> torch.Tensor:
        """Per-pixel motion amplitude sqrt(sum_m |phi_m|^2), [B, H, W]."""
        return self.shapes.pow(2).sum(dim=(1, 2)).sqrt()

    def regularisation(self) -> torch.Tensor:
        """lambda per picture [B] (pixels): a fraction of the 95th-percentile motion amplitude."""
        amp = self.amplitude().flatten(1).float()
        return torch.quantile(amp, 0.95, dim=1).to(torch.float64) * REGULARISATION

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
        return torch.einsum("bm,bmchw->bchw", coordinates.to(self.shapes.dtype), self.shapes)

    def strongest(self, count: int) -> list[int]:
        """Indices of the `count` modes with the most motion energy over the picture (all pictures)."""
        energy = self.shapes.pow(2).sum(dim=(0, 2, 3, 4))
        return sorted(torch.argsort(energy, descending=True)[:count].tolist())
