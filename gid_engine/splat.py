"""Softmax splatting (Niklaus & Liu 2020): the one forward-warping operator every renderer uses."""
from __future__ import annotations

import torch


def softmax_splat(features: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-warp `features` by `flow` with a bilinear footprint and softmax weights exp(metric).

    features [N, C, H, W]; flow [N, 2, H, W] (x, y displacement in pixels); metric [N or 1, 1, H, W].
    Output at q: sum_p b(p,q) exp(Z_p) f_p / sum_p b(p,q) exp(Z_p), with b the bilinear weight of the
    target position p + flow(p) at pixel q. Returns (splatted [N, C, H, W], coverage [N, 1, H, W]), where
    coverage = sum_p b(p,q) (0 marks a hole; the splatted value there is 0).

    The exponent is shifted by the per-target maximum of Z over its contributors, so metrics of any size
    never overflow; pixels whose bilinear weight is exactly 0 do not take part, so a zero flow returns the
    input bit for bit.
    """
    n, c, h, w = features.shape
    if flow.shape != (n, 2, h, w):
        raise ValueError(f"flow must be [N, 2, H, W] = {(n, 2, h, w)}, got {tuple(flow.shape)}")
    if metric.shape not in ((n, 1, h, w), (1, 1, h, w)):
        raise ValueError(f"metric must be [N or 1, 1, H, W], got {tuple(metric.shape)}")
    dtype, device = features.dtype, features.device
    flow = flow.to(dtype)
    z = metric.to(dtype).expand(n, 1, h, w)[:, 0].unsqueeze(0)  # [1, N, H, W], shared by the 4 corners

    tx = torch.arange(w, device=device, dtype=dtype) + flow[:, 0]
    ty = torch.arange(h, device=device, dtype=dtype).view(h, 1) + flow[:, 1]
    x0, y0 = torch.floor(tx), torch.floor(ty)
    fx, fy = tx - x0, ty - y0
    x0, y0 = x0.long(), y0.long()
    # The four bilinear corners stacked on a leading axis: [4, N, H, W].
    xs = torch.stack([x0, x0 + 1, x0, x0 + 1])
    ys = torch.stack([y0, y0, y0 + 1, y0 + 1])
    gx, gy = 1 - fx, 1 - fy
    bilinear = torch.stack([gx * gy, fx * gy, gx * fy, fx * fy])
    valid = (bilinear > 0) & (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)

    # Invalid corners go to one extra slot past the end instead of being compacted away (much faster).
    total = n * h * w
    base = (torch.arange(n, device=device) * (h * w)).view(1, n, 1, 1)
    index = torch.where(valid, base + ys * w + xs, total).reshape(-1)
    bilinear = torch.where(valid, bilinear, 0)
    weight = bilinear * torch.exp(z - _exponent_shift(z, valid, index, total))

    rows = torch.empty(4, n, h, w, c + 2, device=device, dtype=dtype)
    torch.mul(features.permute(0, 2, 3, 1).unsqueeze(0), weight.unsqueeze(-1), out=rows[..., :c])
    rows[..., c] = weight
    rows[..., c + 1] = bilinear
    sums = torch.zeros(total + 1, c + 2, device=device, dtype=dtype).index_add_(0, index, rows.view(-1, c + 2))
    sums = sums[:total]
    numerator, denominator, coverage = sums[:, :c], sums[:, c], sums[:, c + 1]
    out = torch.where(denominator[:, None] > 0, numerator / denominator.clamp(min=torch.finfo(dtype).tiny)[:, None], 0)
    out = out.view(n, h, w, c).permute(0, 3, 1, 2).contiguous()
    return out, coverage.view(n, 1, h, w)


# exp(-SAFE_RANGE) times the smallest bilinear weight float32 resolves (~1e-7) stays far above float32's
# smallest normal number, so within this range one shift per frame loses no contributor.
SAFE_RANGE = 60.0


def _exponent_shift(z: torch.Tensor, valid: torch.Tensor, index: torch.Tensor, total: int) -> torch.Tensor:
    """A shift for exp(z - shift) that cancels in the softmax ratio yet never overflows or underflows.

    When the metric spans less than SAFE_RANGE in a frame, each target q is shifted by the metric of the
    source pixel that sits at q (a cheap gather); otherwise by the largest metric among q's contributors
    (a scatter). Either way a pixel that does not move gets weight exp(0) = 1 exactly, so it stays bit-exact.
    """
    z_frames = z[0].flatten(1)
    if bool((z_frames.amax(1) - z_frames.amin(1) <= SAFE_RANGE).all()):
        padded = torch.cat([z.reshape(-1), z.new_zeros(1)])
        return padded[index].view_as(valid)
    zmax = torch.full((total + 1,), -torch.inf, device=z.device, dtype=z.dtype)
    zmax.scatter_reduce_(0, index, torch.where(valid, z, -torch.inf).reshape(-1), reduce="amax")
    zmax[total] = 0
    return zmax[index].view_as(valid)
