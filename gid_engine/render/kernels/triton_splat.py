"""The Triton kernels behind cuda.softmax_splat (imported only when they are about to run)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 256


@triton.jit
def _corners(flow_ptr, f, offs, mask, h, w, hw):
    """Canvas index of the top-left corner and the fractional offsets of each source's target position."""
    x = (offs % w).to(tl.float32)
    y = (offs // w).to(tl.float32)
    fx = tl.load(flow_ptr + f * 2 * hw + offs, mask=mask, other=0.0)
    fy = tl.load(flow_ptr + f * 2 * hw + hw + offs, mask=mask, other=0.0)
    # Clamped into a one-pixel ring (the canvas has a spare row/column beyond it): no bounds tests needed.
    # `* 1.0` rather than .to(): Triton passes sizes of 1 as compile-time constants (plain ints).
    tx = tl.minimum(tl.maximum(x + fx, -1.0), w * 1.0)
    ty = tl.minimum(tl.maximum(y + fy, -1.0), h * 1.0)
    x0 = tl.floor(tx)
    y0 = tl.floor(ty)
    top_left = (y0.to(tl.int32) + 1) * (w + 3) + (x0.to(tl.int32) + 1)
    return top_left, tx - x0, ty - y0


@triton.jit
def _zmax_kernel(flow_ptr, z_ptr, zmax_ptr, h, w, z_stride, BLOCK: tl.constexpr):
    f = tl.program_id(1)
    hw = h * w
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < hw
    top_left, ax, ay = _corners(flow_ptr, f, offs, mask, h, w, hw)
    z = tl.load(z_ptr + f * z_stride + offs, mask=mask, other=0.0)
    canvas = zmax_ptr + f * (h + 3) * (w + 3)
    tl.atomic_max(canvas + top_left, z, mask=mask & ((1 - ax) * (1 - ay) > 0))
    tl.atomic_max(canvas + top_left + 1, z, mask=mask & (ax * (1 - ay) > 0))
    tl.atomic_max(canvas + top_left + w + 3, z, mask=mask & ((1 - ax) * ay > 0))
    tl.atomic_max(canvas + top_left + w + 4, z, mask=mask & (ax * ay > 0))


@triton.jit
def _add_corner(acc, canvas_size, feat_ptr, f_stride, f, offs, mask, hw, target, b, e, C: tl.constexpr):
    keep = mask & (b > 0)
    weight = b * e
    for ch in tl.static_range(C):
        value = tl.load(feat_ptr + f * f_stride + ch * hw + offs, mask=mask, other=0.0)
        tl.atomic_add(acc + ch * canvas_size + target, weight * value, mask=keep)
    tl.atomic_add(acc + C * canvas_size + target, weight, mask=keep)
    tl.atomic_add(acc + (C + 1) * canvas_size + target, b, mask=keep)


@triton.jit
def _shifted(z, zmax_ptr, target, mask, PER_TARGET: tl.constexpr, e_global):
    if PER_TARGET:
        return tl.exp(tl.minimum(z - tl.load(zmax_ptr + target, mask=mask, other=0.0), 0.0))
    return e_global


@triton.jit
def _splat_kernel(feat_ptr, flow_ptr, z_ptr, e_ptr, zmax_ptr, acc_ptr, h, w, f_stride, z_stride,
                  C: tl.constexpr, PER_TARGET: tl.constexpr, BLOCK: tl.constexpr):
    f = tl.program_id(1)
    hw = h * w
    canvas_size = (h + 3) * (w + 3)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < hw
    top_left, ax, ay = _corners(flow_ptr, f, offs, mask, h, w, hw)
    z = tl.load(z_ptr + f * z_stride + offs, mask=mask, other=0.0)
    e_global = tl.load(e_ptr + f * z_stride + offs, mask=mask, other=0.0)
    acc = acc_ptr + f * (C + 2) * canvas_size
    zmax = zmax_ptr + f * canvas_size
    for corner in tl.static_range(4):
        dx = corner % 2
        dy = corner // 2
        b = (ax if dx else 1 - ax) * (ay if dy else 1 - ay)
        target = top_left + dy * (w + 3) + dx
        e = _shifted(z, zmax, target, mask, PER_TARGET, e_global)
        _add_corner(acc, canvas_size, feat_ptr, f_stride, f, offs, mask, hw, target, b, e, C)


@triton.jit
def _normalize_kernel(feat_ptr, flow_ptr, z_ptr, e_ptr, zmax_ptr, acc_ptr, out_ptr, cov_ptr, h, w, f_stride,
                      z_stride, C: tl.constexpr, PER_TARGET: tl.constexpr, BLOCK: tl.constexpr):
    f = tl.program_id(1)
    hw = h * w
    canvas_size = (h + 3) * (w + 3)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < hw
    target = (offs // w + 1) * (w + 3) + offs % w + 1
    acc = acc_ptr + f * (C + 2) * canvas_size
    den = tl.load(acc + C * canvas_size + target, mask=mask, other=0.0)
    tl.store(cov_ptr + f * hw + offs, tl.load(acc + (C + 1) * canvas_size + target, mask=mask, other=0.0), mask=mask)
    fx = tl.load(flow_ptr + f * 2 * hw + offs, mask=mask, other=1.0)
    fy = tl.load(flow_ptr + f * 2 * hw + hw + offs, mask=mask, other=1.0)
    z = tl.load(z_ptr + f * z_stride + offs, mask=mask, other=0.0)
    own = _shifted(z, zmax_ptr + f * canvas_size, target, mask, PER_TARGET,
                   tl.load(e_ptr + f * z_stride + offs, mask=mask, other=0.0))
    alone = (fx == 0) & (fy == 0) & (den == own)  # a still pixel nothing else reaches keeps its features
    safe = tl.where(den > 0, den, 1.0)
    for ch in tl.static_range(C):
        splatted = tl.load(acc + ch * canvas_size + target, mask=mask, other=0.0) / safe
        feature = tl.load(feat_ptr + f * f_stride + ch * hw + offs, mask=mask, other=0.0)
        value = tl.where(alone, feature, tl.where(den > 0, splatted, 0.0))
        tl.store(out_ptr + f * C * hw + ch * hw + offs, value, mask=mask)


def softmax_splat(features, flow, metric, exp_z):
    n, _, h, w = flow.shape
    c = features.shape[1]
    if features.dtype != torch.float32:
        raise ValueError(f"features: the Triton kernel runs in float32, got {features.dtype}")
    features, flow = features.contiguous(), flow.contiguous()
    z = metric.reshape(metric.shape[0], h * w).contiguous()
    per_target = exp_z is None
    e = z if per_target else exp_z.reshape(z.shape).contiguous()
    canvas = (h + 3) * (w + 3)
    device = features.device
    zmax = torch.full((n if per_target else 1, canvas), -torch.inf, device=device)
    acc = torch.zeros(n, c + 2, canvas, device=device)
    out = torch.empty(n, c, h, w, device=device)
    coverage = torch.empty(n, 1, h, w, device=device)
    f_stride = c * h * w if features.shape[0] > 1 else 0
    z_stride = h * w if z.shape[0] > 1 else 0
    grid = (triton.cdiv(h * w, BLOCK), n)
    if per_target:
        _zmax_kernel[grid](flow, z, zmax, h, w, z_stride, BLOCK=BLOCK)
    _splat_kernel[grid](features, flow, z, e, zmax, acc, h, w, f_stride, z_stride, C=c, PER_TARGET=per_target,
                        BLOCK=BLOCK)
    _normalize_kernel[grid](features, flow, z, e, zmax, acc, out, coverage, h, w, f_stride, z_stride, C=c,
                            PER_TARGET=per_target, BLOCK=BLOCK)
    return out, coverage
