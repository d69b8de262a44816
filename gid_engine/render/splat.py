"""Softmax splatting (Niklaus & Liu 2020): the one forward-warping operator every renderer uses.

`softmax_splat` is the operator; it runs a fused kernel where one is available (numba on CPU, Triton on
CUDA, see kernels/) and the plain-torch implementation, `torch_softmax_splat`, everywhere else: when the
kernel cannot be imported, for other devices, and whenever gradients are needed (the kernels do not
differentiate). All backends compute the same thing, to float32 rounding.
"""
from __future__ import annotations

import torch

from .. import checks
from .kernels import cpu as cpu_kernel
from .kernels import cuda as cuda_kernel
from .kernels import fallback

# exp(-SAFE_RANGE) times the smallest bilinear weight float32 resolves (~1e-7) stays far above float32's
# smallest normal number, so within this range one shift per frame loses no contributor.
SAFE_RANGE = 60.0
BACKENDS = ("auto", "torch", "numba", "triton")


def softmax_splat(features: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor, backend: str = "auto"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-warp `features` by `flow` with a bilinear footprint and softmax weights exp(metric).

    features [N or 1, C, H, W]; flow [N, 2, H, W] (x, y displacement in pixels); metric [N or 1, 1, H, W].
    A batch of 1 in features or metric is shared by all N frames (one picture under many flows).
    Output at q: sum_p b(p,q) exp(Z_p) f_p / sum_p b(p,q) exp(Z_p), with b the bilinear weight of the
    target position p + flow(p) at pixel q. Returns (splatted [N, C, H, W], coverage [N, 1, H, W]), where
    coverage = sum_p b(p,q) (0 marks a hole; the splatted value there is 0).

    Metrics of any size never overflow: exponents are shifted by the frame's maximum when its metrics span
    less than SAFE_RANGE, else by the largest metric among each target's contributors. A pixel that does not
    move and receives nothing else keeps its features bit for bit.
    backend: "auto" (the fused kernel for the tensors' device when it can run, else torch), or one of
    "torch", "numba" (CPU), "triton" (CUDA, or CPU under TRITON_INTERPRET=1) to force it. Under "auto" a
    kernel that fails to compile or launch falls back to torch with one warning (kernels/fallback.py).
    """
    check_shapes(features, flow, metric)
    chosen = pick_backend(checks.choice("backend", backend, BACKENDS), features, flow, metric)
    if chosen != "torch":
        z = metric.to(features.dtype).reshape(metric.shape[0], *flow.shape[-2:])
        kernel = cpu_kernel if chosen == "numba" else cuda_kernel
        fused = fallback.attempt(chosen, lambda: kernel.softmax_splat(features, flow.to(features.dtype), z,
                                                                      shifted_exp(z)), forced=backend != "auto")
        if fused is not None:
            return fused
    return torch_softmax_splat(features, flow, metric)


def shifted_exp(z: torch.Tensor) -> torch.Tensor | None:
    """exp(z - frame max) for metrics z [N, H, W] when every frame spans at most SAFE_RANGE, else None
    (the kernels then shift by the largest metric among each target's contributors)."""
    zmax = z.amax(dim=(1, 2), keepdim=True)
    return torch.exp(z - zmax) if bool(((zmax - z.amin(dim=(1, 2), keepdim=True)) <= SAFE_RANGE).all()) else None


def check_shapes(features: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> None:
    if flow.ndim != 4 or features.ndim != 4:
        raise ValueError(f"flow must be [N, 2, H, W] and features [N or 1, C, H, W] on the same grid; got flow "
                         f"{tuple(flow.shape)} and features {tuple(features.shape)}")
    n, _, h, w = flow.shape
    if flow.shape[1] != 2 or features.shape[0] not in (1, n) or features.shape[-2:] != (h, w):
        raise ValueError(f"flow must be [N, 2, H, W] and features [N or 1, C, H, W] on the same grid; got flow "
                         f"{tuple(flow.shape)} and features {tuple(features.shape)}")
    if metric.shape not in ((n, 1, h, w), (1, 1, h, w)):
        raise ValueError(f"metric must be [N or 1, 1, H, W], got {tuple(metric.shape)}")


def pick_backend(backend: str, features: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> str:
    """The backend that runs: a forced one must be able to run on these tensors (else ValueError)."""
    tensors = (features, flow, metric)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    device = features.device.type
    dtype = features.dtype
    runnable = {
        "torch": True,
        "numba": (device == "cpu" and dtype in (torch.float32, torch.float64) and cpu_kernel.available()
                  and not needs_grad),
        "triton": dtype == torch.float32 and cuda_kernel.available(device) and not needs_grad,
    }
    if backend == "auto":
        return "numba" if runnable["numba"] else "triton" if runnable["triton"] and device == "cuda" else "torch"
    if not runnable[backend]:
        why = {"numba": cpu_kernel.IMPORT_ERROR, "triton": cuda_kernel.IMPORT_ERROR}.get(backend)
        raise ValueError(f"backend: {backend!r} cannot run on {device} {dtype} tensors"
                         + (" that need gradients" if needs_grad else "") + (f" ({why})" if why else ""))
    return backend


def torch_softmax_splat(features: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain-torch operator (differentiable, any device): the fallback and the kernels' reference."""
    n, _, h, w = flow.shape
    c = features.shape[1]
    dtype, device = features.dtype, features.device
    flow = flow.to(dtype)
    z = metric.to(dtype).reshape(metric.shape[0], h * w)

    # Targets live on a canvas with a ring of one pixel left/top and two right/bottom (plus one slot at the
    # very end for the last frame's far corner). Positions are clamped into the ring: whatever lands there (or
    # further out) is outside the picture and is cut away at the end, so no corner needs its own bounds test
    # and one index array serves all four corners.
    row = w + 2
    canvas = (h + 3) * row
    tx = (torch.arange(w, device=device, dtype=dtype) + flow[:, 0]).clamp_(-1, w)
    ty = (torch.arange(h, device=device, dtype=dtype).view(h, 1) + flow[:, 1]).clamp_(-1, h)
    x0, y0 = tx.floor(), ty.floor()
    fx, fy = (tx - x0).view(n, -1), (ty - y0).view(n, -1)
    base = (torch.arange(n, device=device) * canvas).view(n, 1)
    top_left = base + ((y0.long() + 1) * row + (x0.long() + 1)).view(n, -1)
    # Corners on axis 1 ([N, 4, HW]): a frame's four scatters then hit its own canvas while it is in cache.
    index = torch.stack([top_left, top_left + 1, top_left + row, top_left + row + 1], dim=1).view(-1)
    gx, gy = 1 - fx, 1 - fy
    bilinear = torch.stack([gx * gy, fx * gy, gx * fy, fx * fy], dim=1)  # [N, 4, HW]

    per_frame_range = z.amax(1) - z.amin(1)
    if bool((per_frame_range <= SAFE_RANGE).all()):
        exp_z = torch.exp(z - z.amax(1, keepdim=True)).unsqueeze(1)  # [N or 1, 1, HW]: same for all corners
    else:  # per-target shift: the largest metric among the pixels that land there
        zz = z.expand(n, h * w).unsqueeze(1)
        zmax = torch.full((n * canvas + 1,), -torch.inf, device=device, dtype=dtype)
        zmax.scatter_reduce_(0, index, torch.where(bilinear > 0, zz, -torch.inf).view(-1), reduce="amax")
        # Zero-weight corners may see a target nobody else reaches (shift -inf): clamp so they stay finite.
        exp_z = torch.exp((zz - zmax[index].view(n, 4, -1)).clamp(max=0))
    weight = bilinear * exp_z

    def scatter(values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(n * canvas + 1, device=device, dtype=dtype).scatter_add_(0, index, values.reshape(-1))
        return out[:-1].view(n, h + 3, row)[:, 1:h + 1, 1:w + 1]

    flat_features = features.reshape(features.shape[0], c, h * w)
    numerator = torch.stack([scatter(weight * flat_features[:, ch:ch + 1]) for ch in range(c)], dim=1)
    denominator = scatter(weight).unsqueeze(1)
    coverage = scatter(bilinear).unsqueeze(1)
    out = torch.where(denominator > 0, numerator / denominator.clamp(min=torch.finfo(dtype).tiny), 0)
    # A still pixel that nothing else reaches: f * e / e can round, so return f itself.
    still = (flow == 0).all(1, keepdim=True)
    alone = still & (denominator == exp_z[:, 0].view(-1, 1, h, w))
    return torch.where(alone, features, out), coverage
