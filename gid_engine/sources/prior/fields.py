"""Edge-aware Gaussian random fields: the random phases and directions of the prior, coherent inside objects.

White noise smoothed by the domain-transform recursive filter (Gastal & Oliveira 2011) guided by the picture's
colours: correlated over a given length inside one object, nearly independent across strong colour edges.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ... import imageops

# Random fields live on this grid (they are smooth anyway).
FIELD_LONG_SIDE = 192
# Colour difference (sum over RGB of the guide) that counts as an object boundary for the phase fields.
EDGE_SIGMA = 0.2
# Plain blur after the edge-aware one (field-grid pixels): boundaries become short ramps, never 1-pixel tears.
SEAM_BLUR = 1.5
FILTER_ITERATIONS = 3


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
