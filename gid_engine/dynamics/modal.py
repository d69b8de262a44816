"""A spectral volume read as an image-space modal basis (paper §5, Eq. 6; Davis et al. 2015).

Bin k (k >= 1; DC is an offset, not an oscillation) of any spectral volume gives two real mode shapes,
phi_(k,re) = (2/period) Re S_k and phi_(k,im) = (2/period) Im S_k, both of angular frequency
omega_k = 2 pi k fps / period. With real modal coordinates x, the displacement is
    D(p, t) = sum_m phi_m(p) x_m(t) = Re(sum_k S_k(p) q_k(t)),   q_k = (2/period) (x_(k,re) - i x_(k,im)),
which is Eq. 6 with complex modal coordinates. The 2/period factor makes x = 1 reproduce the bin's own
displacement amplitude, so every mode has unit mass and stiffness omega^2.

Modes belong to objects: the volume's modes span the whole picture (every bin moves every object a little), so
a pull answered by them moves everything. The modes of the object at p are the volume's modes restricted to its
neighbourhood, phi_m(q) g_p(q), with g_p a Gaussian window of radius OBJECT_RADIUS of the long side around p
(g_p(p) = 1): pixels near p that move with p follow, pixels that do not move stay, the far picture stays still.

Parts of one object move together: the volume's mode shapes vary from pixel to pixel (neighbouring leaves and
flower heads sway out of step), so the modes read at one pixel describe a speck, and a pull answered by them
moves a speck a few pixels wide that nobody sees follow the drag (optical flow on the rendered frames saw
0.28x the pull). The object's modes are the volume's mode shapes averaged over COHERENCE_RADIUS of the long side
over the pixels that move: phi'(q) = m(q) (G * m phi)(q) / (G * m)(q), with m = 1 where a pixel moves at least
SUPPORT_SHARE of its neighbourhood's mean amplitude and falling to 0 at still pixels. Where pixels move in step
this is phi; where they do not it is their common motion; still pixels stay still.

Pulled state (a force at p, Davis et al. 2015): a force F at p drives each mode in proportion to how it moves there,
x = Phi(p)^T F, so the response is large where the modes that move p move and zero where nothing moves. F is
the force that puts p where the user dragged it: Phi(p) Phi(p)^T F = d' (a 2 x 2 solve), with a Tikhonov term of
DIRECTION_FLOOR^2 of the trace, so a direction in which p hardly moves is followed only partly instead of
blowing the coordinates up. Over time the volume's own motion has covariance Cov(D(q), D(p)) = 1/2 Phi(q)
Phi(p)^T, so the pulled field Phi(q) x is the regression of the motion at q on the motion at p.

Reach: a point can be pulled as far as its object moves: REACH of the long side for points moving as much as
the picture's liveliest parts (the 95th percentile of the motion amplitude), proportionally less for points that
move less, nothing for still points. A longer pull is shortened to the reach (d' = d * reach / |d|), and the
node and the CLI say so; a flick whose swing would exceed the reach is slowed alike (simulate.py).
"""
from __future__ import annotations

import dataclasses
import math

import torch

from ..imageops import gaussian_blur
from ..spectral.volume import SpectralVolume

# Radius (Gaussian sigma) of a pulled object's window, as a fraction of the picture's long side.
OBJECT_RADIUS = 0.1
# Mode shapes are averaged over this radius (Gaussian sigma, of the long side) into the modes of objects.
COHERENCE_RADIUS = 0.06
SUPPORT_SHARE = 0.5
# What a pull holds: a Gaussian patch of this radius (sigma, of the long side) around the point.
GRAB_RADIUS = 0.015
# How far the liveliest parts of a picture can be pulled, as a fraction of its long side.
REACH = 0.1
# Directions in which a point moves less than this share of its overall motion are followed only partly.
DIRECTION_FLOOR = 0.1
# The liveliest parts: this quantile of the per-pixel motion amplitude.
LIVELY_QUANTILE = 0.95


def object_window(height: int, width: int, point: tuple[float, float], device=None,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """g_p [H, W]: the window of the object at `point` (fractions; pixel centres at (i + 0.5) / size), a Gaussian
    of radius OBJECT_RADIUS of the long side, 1 at the point. The same shape at any resolution."""
    xs = torch.arange(width, device=device, dtype=dtype) + 0.5
    ys = torch.arange(height, device=device, dtype=dtype) + 0.5
    return window_at(xs[None, :], ys[:, None], height, width, point)


def window_at(x: torch.Tensor, y: torch.Tensor, height: int, width: int, point: tuple[float, float]) -> torch.Tensor:
    """g_p at positions (x, y) (pixels of a height x width picture, broadcast together; pixel centres at i + 0.5):
    object_window anywhere, e.g. at tracked points between pixel centres."""
    sigma = OBJECT_RADIUS * max(height, width)
    dx, dy = (x - point[0] * width) / sigma, (y - point[1] * height) / sigma
    return torch.exp(-0.5 * (dx * dx + dy * dy))


def coherent(volume: SpectralVolume) -> SpectralVolume:
    """The volume with the mode shapes of objects: m(q) (G * m phi)(q) / (G * m)(q) for every bin k >= 1 (DC kept),
    G a Gaussian of COHERENCE_RADIUS of the long side, m the object support (module docstring). Bin by bin, so the
    extra memory is one bin's planes."""
    c = volume.coeffs
    b, k, _, h, w = c.shape
    sigma = COHERENCE_RADIUS * max(h, w)
    amplitude = torch.zeros(b, 1, h, w, device=c.device, dtype=c.real.dtype)
    for bin_k in range(1, k):
        amplitude += c[:, bin_k].abs().pow(2).sum(dim=1, keepdim=True)
    amplitude = amplitude.sqrt()
    # Pixels that move at least SUPPORT_SHARE of their neighbourhood's mean belong to the object fully (m = 1);
    # the modes are averaged over the object only (normalised by G * m), so its edges keep their motion.
    support = (amplitude / (SUPPORT_SHARE * gaussian_blur(amplitude, sigma)).clamp(min=1e-12)).clamp(max=1.0)
    share = gaussian_blur(support, sigma).clamp(min=1e-12)
    out = c.clone()
    for bin_k in range(1, k):
        planes = torch.view_as_real(c[:, bin_k]).permute(0, 1, 4, 2, 3).reshape(b, 4, h, w)
        planes = (gaussian_blur(planes * support, sigma) / share * support).view(b, 2, 2, h, w)
        out[:, bin_k] = torch.complex(planes[:, :, 0], planes[:, :, 1])
    return volume.replace(coeffs=out)


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

    @classmethod
    def of_objects(cls, volume: SpectralVolume) -> "ModalBasis":
        """The modes of the volume's objects (coherent): what pulls and flicks move."""
        return cls.from_volume(coherent(volume))

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
        """Mode shapes of what a pull at the point grabs (fractions of width and height; pixel centres at
        (i + 0.5) / size): their mean over a Gaussian of GRAB_RADIUS of the long side around it, [B, 2, M] float64.
        A finger or a cursor holds a patch, not a pixel, and the patch is what anyone sees follow."""
        h, w = self.volume.height, self.volume.width
        sigma = max(GRAB_RADIUS * max(h, w), 0.5)
        cx, cy = point[0] * w - 0.5, point[1] * h - 0.5
        r = int(math.ceil(3 * sigma))
        x0, x1 = max(0, int(math.floor(cx)) - r), min(w, int(math.ceil(cx)) + r + 1)
        y0, y1 = max(0, int(math.floor(cy)) - r), min(h, int(math.ceil(cy)) + r + 1)
        if x0 >= x1 or y0 >= y1:  # a point outside the picture grabs its nearest border pixel
            x0, x1 = (min(max(int(round(cx)), 0), w - 1),) * 2
            y0, y1 = (min(max(int(round(cy)), 0), h - 1),) * 2
            x1, y1 = x1 + 1, y1 + 1
        xs = torch.arange(x0, x1, dtype=torch.float64, device=self.volume.device) - cx
        ys = torch.arange(y0, y1, dtype=torch.float64, device=self.volume.device) - cy
        weight = torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2) / sigma ** 2)
        weight = weight / weight.sum()
        patch = self.volume.coeffs[..., y0:y1, x0:x1].to(torch.complex128)  # [B, K, 2, h', w']
        sampled = (patch * weight).sum(dim=(-2, -1))  # [B, K, 2]
        return self.shapes(sampled).transpose(1, 2)

    def amplitude(self) -> torch.Tensor:
        """Per-pixel motion amplitude sqrt(sum_m |phi_m|^2), [B, H, W] (accumulated bin by bin)."""
        total = torch.zeros(self.volume.batch, self.volume.height, self.volume.width, device=self.volume.device)
        for k in range(1, self.volume.num_bins):
            total += self.volume.coeffs[:, k].abs().float().pow(2).sum(dim=1)
        return total.sqrt() * self.scale

    def lively(self) -> torch.Tensor:
        """Motion amplitude of the picture's liveliest parts [B] (pixels, float64): the LIVELY_QUANTILE."""
        amp = self.amplitude().flatten(1)
        rank = max(1, math.ceil(LIVELY_QUANTILE * amp.shape[1]))
        return amp.kthvalue(rank, dim=1).values.to(torch.float64)

    def reach_per_px(self) -> torch.Tensor:
        """Pixels of reach per pixel of motion amplitude [B]: REACH of the long side for the liveliest parts
        (0 for a picture without motion)."""
        lively = self.lively()
        return torch.where(lively > 0, REACH * max(self.volume.height, self.volume.width) / lively.clamp(min=1e-12),
                           torch.zeros_like(lively))

    def reach(self, point: tuple[float, float]) -> torch.Tensor:
        """How far the point can be pulled [B] (pixels): in proportion to how much it moves (0 where still)."""
        moves = self.at(point).pow(2).sum(dim=(1, 2)).sqrt()
        return self.reach_per_px().to(moves.device) * moves

    def solve(self, point: tuple[float, float], target: tuple[float, float]) -> torch.Tensor:
        """Modal coordinates [B, M] (float64) of the force at `point` that moves it by `target` (pixels):
        x = Phi^T F with (Phi Phi^T + DIRECTION_FLOOR^2 tr(Phi Phi^T) I) F = target. Not limited to the reach."""
        phi = self.at(point)  # [B, 2, M]
        gram = phi @ phi.transpose(1, 2)
        floor = DIRECTION_FLOOR ** 2 * gram.diagonal(dim1=1, dim2=2).sum(-1)
        eye = torch.eye(2, dtype=phi.dtype, device=phi.device)
        d = torch.tensor(target, dtype=torch.float64, device=phi.device).expand(phi.shape[0], 2)
        # pinv: a point without any motion has gram = 0, and then the coordinates are exactly 0.
        force = torch.linalg.pinv(gram + floor[:, None, None] * eye) @ d.unsqueeze(-1)
        return (phi.transpose(1, 2) @ force).squeeze(-1)

    def displacement(self, coordinates: torch.Tensor, point: tuple[float, float]) -> torch.Tensor:
        """Displacement field [B, 2, H, W] of modal coordinates [B, M] of the object at `point`."""
        window = object_window(self.volume.height, self.volume.width, point, self.volume.device)
        return torch.einsum("bm,bmchw->bchw", coordinates.to(torch.float64), self.shapes()) * window

    def strongest(self, count: int) -> list[int]:
        """Indices of the `count` modes with the most motion energy over the picture (all pictures)."""
        energy = []
        for k in range(1, self.volume.num_bins):
            bin_k = self.volume.coeffs[:, k]
            energy += [float(bin_k.real.float().pow(2).sum()), float(bin_k.imag.float().pow(2).sum())]
        return sorted(torch.argsort(torch.tensor(energy), descending=True)[:count].tolist())
