"""SplatRenderer's whole frame pipeline fused on CPU (numba): snap, pad, splat, hole fill, crop, write.

The same computation as SplatRenderer's plain-torch path at its defaults (one level, no sharpening), per
frame in parallel: still-drift snapping, replicate padding by `margin`, softmax splatting of colour, depth
and an "inside" channel (cpu.splat_frame), trust of replicated border content, and the background-preferring
push-pull fill, written straight into a channel-last output. No full-resolution temporary leaves a frame's
own scratch, so a chunk costs one pass over memory instead of dozens of tensor operations.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import cpu
from .cpu import as_array

if cpu.numba is not None:
    from numba import njit, prange

    _previous_cache_dir = cpu.module_cache_dir(__name__)

    @njit(cache=True, nogil=True)
    def _pool(src, src_h, src_w, dst, dst_h, dst_w, premultiply):  # pragma: no cover - compiled
        """2x2 average (1 along an axis of size 1, edge windows clipped) of premultiplied colour and weight.

        src/dst [pixels, 4+]: colour (premultiplied unless `premultiply`, then multiplied here) and weight
        in column 3 (src) and 3 (dst)."""
        kh, kw = (2 if src_h > 1 else 1), (2 if src_w > 1 else 1)
        for yo in range(dst_h):
            for xo in range(dst_w):
                s0 = s1 = s2 = s3 = 0.0
                count = 0
                for y in range(yo * kh, min(yo * kh + kh, src_h)):
                    for x in range(xo * kw, min(xo * kw + kw, src_w)):
                        i = y * src_w + x
                        weight = np.float64(src[i, 4 if premultiply else 3])
                        scale = weight if premultiply else 1.0
                        s0 += src[i, 0] * scale
                        s1 += src[i, 1] * scale
                        s2 += src[i, 2] * scale
                        s3 += weight
                        count += 1
                o = yo * dst_w + xo
                dst[o, 0], dst[o, 1], dst[o, 2], dst[o, 3] = s0 / count, s1 / count, s2 / count, s3 / count

    @njit(inline="always")
    def _source_index(dst, scale, size):  # pragma: no cover - compiled
        """Bilinear source index (align_corners=False, float32 like torch), the next one and its weight."""
        real = max(np.float32(scale) * (np.float32(dst) + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
        i0 = min(int(np.floor(real)), size - 1)
        lam = min(max(np.float64(real) - i0, 0.0), 1.0)
        return i0, (i0 + 1 if i0 < size - 1 else i0), lam

    @njit(inline="always")
    def _upsampled(coarse, hc, wc, y0, y1, ly, x0, x1, lx, ch):  # pragma: no cover - compiled
        return ((1 - ly) * ((1 - lx) * coarse[y0 * wc + x0, ch] + lx * coarse[y0 * wc + x1, ch])
                + ly * ((1 - lx) * coarse[y1 * wc + x0, ch] + lx * coarse[y1 * wc + x1, ch]))

    @njit(inline="always")
    def _max_weight(level, size):  # pragma: no cover - compiled
        top = 0.0
        for i in range(size):
            top = max(top, np.float64(level[i, 3]))
        return max(top, 1e-12)

    @njit(cache=True, nogil=True)
    def _pull(fine, h, w, coarse, hc, wc):  # pragma: no cover - compiled
        """Replace a level's premultiplied colour by the push-pull estimate, given the next coarser estimate."""
        max_w = _max_weight(fine, h * w)
        scale_y, scale_x = np.float32(hc) / np.float32(h), np.float32(wc) / np.float32(w)
        for y in range(h):
            y0, y1, ly = _source_index(y, scale_y, hc)
            for x in range(w):
                x0, x1, lx = _source_index(x, scale_x, wc)
                i = y * w + x
                weight = np.float64(fine[i, 3])
                trust = min(weight / max_w * 4, 1.0)
                for ch in range(3):
                    up = _upsampled(coarse, hc, wc, y0, y1, ly, x0, x1, lx, ch)
                    fine[i, ch] = fine[i, ch] / max(weight, 1e-12) * trust + up * (1 - trust)

    @njit(parallel=True, cache=True, nogil=True)
    def _render_frames(features, metric, exp_z, per_target, flow, margin, still2, border_trust, preference,
                       lv_h, lv_w, off, pyr, kept, out):  # pragma: no cover - compiled
        """features [B, 5, H', W'] (colour, metric, inside; padded), metric/exp_z [B, H', W'], flow [F, 2, h, w]
        (frame-major, F = n * B); scratch: kept [F, H' * W', 5] (colour, alpha, fill weight of the finest
        level) and pyr [F, pixels of the coarser levels, 4]; out [B, n, h, w, 3]."""
        frames, _, h, w = flow.shape
        pictures, c, hp, wp = features.shape
        row = wp + 3
        levels = len(lv_h)
        need = np.zeros(frames, dtype=np.int64)
        holes = np.zeros(frames, dtype=np.bool_)
        for frame in prange(frames):
            f = np.int64(frame)  # prange's index is unsigned; mixing it with ints would type as float
            p = f % pictures
            padded = np.empty((2, hp, wp), dtype=flow.dtype)
            for y in range(hp):
                ys = min(max(y - margin, 0), h - 1)
                for x in range(wp):
                    xs = min(max(x - margin, 0), w - 1)
                    fx, fy = flow[f, 0, ys, xs], flow[f, 1, ys, xs]
                    still = fx * fx + fy * fy < still2  # in the flow's precision, like the torch path
                    padded[0, y, x] = 0 if still else fx
                    padded[1, y, x] = 0 if still else fy
            acc = np.zeros(((hp + 3) * row, c + 2), dtype=out.dtype)
            zmax = np.full((hp + 3) * row if per_target else 1, -np.inf)
            cpu.splat_frame(features[p], padded, metric[p], exp_z[p], per_target, acc, zmax)
            depth_scale = 0.0
            for y in range(hp):
                for x in range(wp):
                    depth_scale = max(depth_scale, np.float64(acc[(y + 1) * row + x + 1, 3]))
            depth_scale = max(depth_scale, 1e-6)
            any_hole, any_empty = False, False
            kf = kept[f]
            for y in range(hp):
                for x in range(wp):
                    t, i = (y + 1) * row + x + 1, y * wp + x
                    trust = border_trust + (1 - border_trust) * np.float64(acc[t, 4])
                    alpha = min(max(np.float64(acc[t, c + 1]) * 4, 0.0), 1.0) * trust
                    weight = alpha * np.exp(-preference * min(max(np.float64(acc[t, 3]) / depth_scale, 0.0), 1.0))
                    any_hole |= alpha < 1
                    any_empty |= not weight > 0
                    kf[i, 0], kf[i, 1], kf[i, 2], kf[i, 3], kf[i, 4] = acc[t, 0], acc[t, 1], acc[t, 2], alpha, weight
            holes[f] = any_hole
            # Pyramid levels while some weight is zero: the first from kept, the rest inside pyr.
            need[f] = 0
            if any_empty and levels > 1:
                _pool(kf, lv_h[0], lv_w[0], pyr[f, off[1]:], lv_h[1], lv_w[1], True)
                need[f] = levels - 1
                for level in range(1, levels - 1):
                    if np.all(pyr[f, off[level]:off[level] + lv_h[level] * lv_w[level], 3] > 0):
                        need[f] = level
                        break
                    _pool(pyr[f, off[level]:], lv_h[level], lv_w[level], pyr[f, off[level + 1]:],
                          lv_h[level + 1], lv_w[level + 1], False)
        # As in the torch path, the pyramid is as deep as the chunk's most holed frame needs, and no frame
        # is filled when no frame of the chunk has a hole.
        top, fill = need.max(), holes.any()
        for frame in prange(frames):
            f = np.int64(frame)
            p, k = f % pictures, f // pictures
            kf = kept[f]
            if fill and top > 0:
                for level in range(need[f] + 1, top + 1):  # coarser levels this frame did not need itself
                    if level == 1:
                        _pool(kf, lv_h[0], lv_w[0], pyr[f, off[1]:], lv_h[1], lv_w[1], True)
                    else:
                        _pool(pyr[f, off[level - 1]:], lv_h[level - 1], lv_w[level - 1], pyr[f, off[level]:],
                              lv_h[level], lv_w[level], False)
                for i in range(off[top], off[top] + lv_h[top] * lv_w[top]):
                    for ch in range(3):
                        pyr[f, i, ch] = pyr[f, i, ch] / max(np.float64(pyr[f, i, 3]), 1e-12)
                for level in range(top - 1, 0, -1):
                    _pull(pyr[f, off[level]:], lv_h[level], lv_w[level], pyr[f, off[level + 1]:],
                          lv_h[level + 1], lv_w[level + 1])
            # The finest level's estimate is only needed where the output is not fully trusted.
            max_w = _max_weight(kf[:, 1:], hp * wp) if fill else 1.0
            coarse = pyr[f, off[1]:]
            hc, wc = lv_h[min(1, levels - 1)], lv_w[min(1, levels - 1)]
            scale_y, scale_x = np.float32(hc) / np.float32(hp), np.float32(wc) / np.float32(wp)
            for y in range(h):
                y0, y1, ly = _source_index(y + margin, scale_y, hc)
                for x in range(w):
                    i = (y + margin) * wp + x + margin
                    alpha = np.float64(kf[i, 3])
                    if alpha >= 1 or not fill:
                        for ch in range(3):
                            out[p, k, y, x, ch] = kf[i, ch]
                        continue
                    x0, x1, lx = _source_index(x + margin, scale_x, wc)
                    weight = np.float64(kf[i, 4])
                    trust = min(weight / max_w * 4, 1.0) if top > 0 else 1.0
                    for ch in range(3):
                        value = np.float64(kf[i, ch])
                        own = value * weight / max(weight, 1e-12)
                        up = _upsampled(coarse, hc, wc, y0, y1, ly, x0, x1, lx, ch) if top > 0 else 0.0
                        out[p, k, y, x, ch] = value * alpha + (own * trust + up * (1 - trust)) * (1 - alpha)


if cpu.numba is not None:
    cpu.numba.config.CACHE_DIR = _previous_cache_dir


def pyramid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Level sizes of the push-pull pyramid: halved (rounding up) until 1 x 1."""
    shapes = [(height, width)]
    while max(shapes[-1]) > 1:
        h, w = shapes[-1]
        shapes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return shapes


def render_frames(features: torch.Tensor, metric: torch.Tensor, exp_z: torch.Tensor | None, flow: torch.Tensor,
                  margin: int, still_below_px: float, border_trust: float, background_preference: float
                  ) -> torch.Tensor:
    """Frames [B, n, h, w, 3] from padded picture features [B, 5, H', W'] and flow [n * B, 2, h, w]."""
    dtype = features.dtype
    pictures, _, hp, wp = features.shape
    frames, _, h, w = flow.shape
    shapes = pyramid_shapes(hp, wp)
    sizes = [a * b for a, b in shapes]
    offsets = np.array([0] + [sum(sizes[1:level]) for level in range(1, len(shapes))], dtype=np.int64)
    pyr = np.empty((frames, max(1, sum(sizes[1:])), 4), dtype=np.float32 if dtype == torch.float32 else np.float64)
    kept = np.empty((frames, hp * wp, 5), dtype=pyr.dtype)
    out = torch.empty(pictures, frames // pictures, h, w, 3, dtype=dtype)
    z = as_array(metric, dtype)
    still2 = np.array(still_below_px ** 2, dtype=pyr.dtype)[()]
    cpu.use_torch_threads()
    _render_frames(as_array(features, dtype), z, z if exp_z is None else as_array(exp_z, dtype), exp_z is None,
                   as_array(flow, dtype), margin, still2, float(border_trust), float(background_preference),
                   np.array([s[0] for s in shapes], dtype=np.int64), np.array([s[1] for s in shapes], dtype=np.int64),
                   offsets, pyr, kept, out.numpy())
    return out
