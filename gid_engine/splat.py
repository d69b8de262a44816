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
    dtype = features.dtype
    device = features.device
    flow = flow.to(dtype)
    metric = metric.to(dtype).expand(n, 1, h, w)

    gy, gx = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    tx = gx + flow[:, 0]
    ty = gy + flow[:, 1]
    x0 = torch.floor(tx)
    y0 = torch.floor(ty)
    fx = tx - x0
    fy = ty - y0
    x0 = x0.long()
    y0 = y0.long()

    base = (torch.arange(n, device=device) * (h * w)).view(n, 1, 1)
    corners = []
    for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                           (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        xs, ys = x0 + dx, y0 + dy
        valid = (weight > 0) & (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        index = base + ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)
        corners.append((index[valid], weight[valid], valid))

    index = torch.cat([ix for ix, _, _ in corners])
    bilinear = torch.cat([bw for _, bw, _ in corners])
    z = torch.cat([metric[:, 0][valid] for _, _, valid in corners])
    feats = features.permute(0, 2, 3, 1)  # channels last so each source pixel is one row
    rows = torch.cat([feats[valid] for _, _, valid in corners])

    total = n * h * w
    zmax = torch.full((total,), -torch.inf, device=device, dtype=dtype)
    zmax.scatter_reduce_(0, index, z, reduce="amax", include_self=True)
    weight = bilinear * torch.exp(z - zmax[index])

    numerator = torch.zeros(total, c, device=device, dtype=dtype).index_add_(0, index, rows * weight[:, None])
    denominator = torch.zeros(total, device=device, dtype=dtype).index_add_(0, index, weight)
    coverage = torch.zeros(total, device=device, dtype=dtype).index_add_(0, index, bilinear)

    filled = denominator > 0
    out = torch.zeros_like(numerator)
    out[filled] = numerator[filled] / denominator[filled, None]
    out = out.view(n, h, w, c).permute(0, 3, 1, 2).contiguous()
    return out, coverage.view(n, 1, h, w)
