"""SplatRenderer's whole frame pipeline fused on CPU (numba): snap, pad, splat, hole fill, crop, write.

The same computation as SplatRenderer's plain-torch path at its defaults (one level, no sharpening), per
frame in parallel: still-drift snapping, replicate padding by `margin` (read from the unpadded flow),
softmax splatting of colour, depth and an "inside" channel (cpu.splat_frame's arithmetic with the channel
count fixed, so each corner's seven sums stay in registers), trust of replicated border content, and the
background-preferring push-pull fill, written straight into a channel-last output. Each frame's canvas holds
the splat and then, in place, the colour, alpha and fill weight the fill reads: no other full-resolution
temporary, so a chunk costs a few passes over memory instead of dozens of tensor operations.
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
    def _pool(src, first, stride, src_h, src_w, weight_column, premultiply, dst, dst_h, dst_w
              ):  # pragma: no cover - compiled
        """2x2 average (1 along an axis of size 1, edge windows clipped) of premultiplied colour and weight.

        src [rows, 4+]: pixel (y, x) at row first + y * stride + x, colour in columns 0-2 (premultiplied unless
        `premultiply`, then multiplied here) and weight in `weight_column`; dst [dst_h * dst_w, 4+]: the same
        with the weight in column 3."""
        kh, kw = (2 if src_h > 1 else 1), (2 if src_w > 1 else 1)
        for yo in range(dst_h):
            for xo in range(dst_w):
                s0 = s1 = s2 = s3 = 0.0
                count = 0
                for y in range(yo * kh, min(yo * kh + kh, src_h)):
                    for x in range(xo * kw, min(xo * kw + kw, src_w)):
                        i = first + y * stride + x
                        weight = np.float64(src[i, weight_column])
                        scale = weight if premultiply else 1.0
                        s0 += src[i, 0] * scale
                        s1 += src[i, 1] * scale
                        s2 += src[i, 2] * scale
                        s3 += weight
                        count += 1
                o = yo * dst_w + xo
                dst[o, 0], dst[o, 1], dst[o, 2], dst[o, 3] = s0 / count, s1 / count, s2 / count, s3 / count

    @njit(inline="always")
    def _pool_level(canvas, hp, wp, pyr, level, lv_h, lv_w, off):  # pragma: no cover - compiled
        """Pyramid level `level` (>= 1) from the one below: level 1 from the canvas (colour premultiplied here by
        the fill weight, column 6), the others within pyr."""
        if level == 1:
            _pool(canvas, wp + 4, wp + 3, hp, wp, 6, True, pyr[off[1]:], lv_h[1], lv_w[1])
        else:
            _pool(pyr[off[level - 1]:], 0, lv_w[level - 1], lv_h[level - 1], lv_w[level - 1], 3, False,
                  pyr[off[level]:], lv_h[level], lv_w[level])

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

    @njit(inline="always")
    def _corner(canvas, t, wt, cov, f0, f1, f2, f3, f4):  # pragma: no cover - compiled
        canvas[t, 0] += wt * f0
        canvas[t, 1] += wt * f1
        canvas[t, 2] += wt * f2
        canvas[t, 3] += wt * f3
        canvas[t, 4] += wt * f4
        canvas[t, 5] += wt
        canvas[t, 6] += cov

    @njit(inline="always")
    def _source(flow, y, x, margin, h, w, still2):  # pragma: no cover - compiled
        """Displacement of padded source (y, x): the border pixel's for the replicated ring, 0 if invisible."""
        ys, xs = min(max(y - margin, 0), h - 1), min(max(x - margin, 0), w - 1)
        fx, fy = flow[0, ys, xs], flow[1, ys, xs]
        if fx * fx + fy * fy < still2:  # in the flow's precision, like the torch path
            return fx * 0, fy * 0, True
        return fx, fy, fx == 0 and fy == 0

    @njit(cache=True, nogil=True)
    def _splat_picture(features, exp_z, metric, per_target, flow, margin, still2, canvas, zmax
                       ):  # pragma: no cover - compiled
        """Softmax-splat the padded picture features [5, H', W'] (colour, metric, inside) by the unpadded
        flow [2, h, w] (replicated into the margin, invisible drift snapped to 0) into canvas
        [(H' + 3) * (W' + 3), 8]: the five features, the softmax weight sum and the coverage (cpu.splat_frame
        with the channel count fixed, so each corner is seven adds of values held in registers)."""
        _, hp, wp = features.shape
        h, w = flow.shape[1:]
        row = wp + 3
        if per_target:
            for y in range(hp):
                for x in range(wp):
                    fx, fy, _ = _source(flow, y, x, margin, h, w, still2)
                    t, ax, ay = cpu.landing(fx, fy, y, x, hp, wp, row)
                    cpu.raise_shift(zmax, t, row, ax, ay, np.float64(metric[y, x]))
        one = canvas.dtype.type(1)
        for y in range(hp):
            for x in range(wp):
                fx, fy, _ = _source(flow, y, x, margin, h, w, still2)
                t, ax, ay = cpu.landing(fx, fy, y, x, hp, wp, row)
                f0, f1, f2, f3, f4 = (features[0, y, x], features[1, y, x], features[2, y, x], features[3, y, x],
                                      features[4, y, x])
                b00, b01, b10, b11 = (1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay
                if per_target:  # clamped: a zero-weight corner may see a target nobody reaches (-inf)
                    z = np.float64(metric[y, x])
                    e00 = np.exp(min(z - zmax[t], 0.0))
                    e01 = np.exp(min(z - zmax[t + 1], 0.0))
                    e10 = np.exp(min(z - zmax[t + row], 0.0))
                    e11 = np.exp(min(z - zmax[t + row + 1], 0.0))
                else:
                    e00 = e01 = e10 = e11 = np.float64(exp_z[y, x])
                if ax == 0 and ay == 0:  # lands exactly on a pixel (e.g. still): one corner
                    _corner(canvas, t, canvas.dtype.type(b00 * e00), one, f0, f1, f2, f3, f4)
                    continue
                # Weights in float64, rounded once to the canvas's precision (like the torch operator).
                _corner(canvas, t, canvas.dtype.type(b00 * e00), canvas.dtype.type(b00), f0, f1, f2, f3, f4)
                _corner(canvas, t + 1, canvas.dtype.type(b01 * e01), canvas.dtype.type(b01), f0, f1, f2, f3, f4)
                _corner(canvas, t + row, canvas.dtype.type(b10 * e10), canvas.dtype.type(b10), f0, f1, f2, f3, f4)
                _corner(canvas, t + row + 1, canvas.dtype.type(b11 * e11), canvas.dtype.type(b11),
                        f0, f1, f2, f3, f4)

    @njit(inline="always")
    def _ramp(value, full, none):  # pragma: no cover - compiled
        return min(max((none - value) / (none - full), 0.0), 1.0)

    @njit(inline="always")
    def _cell(sx, sy, hp, wp):  # pragma: no cover - compiled
        """Bilinear cell of padded position (sx, sy) (border held): corners, weights and whether inside per axis."""
        xc, yc = min(max(sx, 0.0), wp - 1.0), min(max(sy, 0.0), hp - 1.0)
        x0, y0 = min(np.floor(xc), max(wp - 2.0, 0.0)), min(np.floor(yc), max(hp - 2.0, 0.0))
        ax, ay = xc - x0, yc - y0
        ix, iy = int(x0), int(y0)
        inside_x = 1.0 if 0.0 <= sx <= wp - 1.0 else 0.0
        inside_y = 1.0 if 0.0 <= sy <= hp - 1.0 else 0.0
        return ix, iy, min(ix + 1, wp - 1), min(iy + 1, hp - 1), ax, ay, inside_x, inside_y

    @njit(inline="always")
    def _flow_at(flow, sx, sy, margin, h, w, hp, wp, still2):  # pragma: no cover - compiled
        """The padded (snapped) flow at (sx, sy), bilinear, and its derivatives within the cell: fx, fy, dfx/dx,
        dfx/dy, dfy/dx, dfy/dy (renderer._bilinear)."""
        x0, y0, x1, y1, ax, ay, inside_x, inside_y = _cell(sx, sy, hp, wp)
        a0, b0, _ = _source(flow, y0, x0, margin, h, w, still2)
        a1, b1, _ = _source(flow, y0, x1, margin, h, w, still2)
        a2, b2, _ = _source(flow, y1, x0, margin, h, w, still2)
        a3, b3, _ = _source(flow, y1, x1, margin, h, w, still2)
        f00x, f01x, f10x, f11x = np.float64(a0), np.float64(a1), np.float64(a2), np.float64(a3)
        f00y, f01y, f10y, f11y = np.float64(b0), np.float64(b1), np.float64(b2), np.float64(b3)
        top_x, bottom_x = f00x + (f01x - f00x) * ax, f10x + (f11x - f10x) * ax
        top_y, bottom_y = f00y + (f01y - f00y) * ax, f10y + (f11y - f10y) * ax
        dxx = ((f01x - f00x) * (1 - ay) + (f11x - f10x) * ay) * inside_x
        dyx = ((f01y - f00y) * (1 - ay) + (f11y - f10y) * ay) * inside_x
        return (top_x + (bottom_x - top_x) * ay, top_y + (bottom_y - top_y) * ay, dxx, (bottom_x - top_x) * inside_y,
                dyx, (bottom_y - top_y) * inside_y)

    @njit(inline="always")
    def _stretch(dxx, dxy, dyx, dyy):  # pragma: no cover - compiled
        a, b, c, d = 1 + dxx, dxy, dyx, 1 + dyy  # renderer.stretch_of: the Jacobian's largest singular value
        squares = a * a + b * b + c * c + d * d
        det = a * d - b * c
        return np.sqrt(0.5 * (squares + np.sqrt(max(squares * squares - 4 * det * det, 0.0)))), det

    CONVERGED_PX = 1e-3  # renderer.SURFACE_CONVERGED

    @njit(inline="always")
    def _cell_bound(flow, y, x, margin, h, w, hp, wp, still2):  # pragma: no cover - compiled
        """renderer.cell_stretch_bound for the cell at padded (y, x): the largest stretch at its four corners."""
        if y == 0 or x == 0 or y >= hp - 2 or x >= wp - 2:
            return np.inf
        a0, b0, _ = _source(flow, y, x, margin, h, w, still2)
        a1, b1, _ = _source(flow, y, x + 1, margin, h, w, still2)
        a2, b2, _ = _source(flow, y + 1, x, margin, h, w, still2)
        a3, b3, _ = _source(flow, y + 1, x + 1, margin, h, w, still2)
        most = 0.0
        for top in (True, False):  # d/dx along the cell's top or bottom edge
            dxx = np.float64(a1) - a0 if top else np.float64(a3) - a2
            dyx = np.float64(b1) - b0 if top else np.float64(b3) - b2
            for left in (True, False):  # d/dy along its left or right edge
                dxy = np.float64(a2) - a0 if left else np.float64(a3) - a1
                dyy = np.float64(b2) - b0 if left else np.float64(b3) - b1
                most = max(most, _stretch(dxx, dxy, dyx, dyy)[0])
        return most

    @njit(inline="always")
    def _feature_at(features, ch, sx, sy, hp, wp):  # pragma: no cover - compiled
        x0, y0, x1, y1, ax, ay, _, _ = _cell(sx, sy, hp, wp)
        top = np.float64(features[ch, y0, x0]) + (np.float64(features[ch, y0, x1]) - features[ch, y0, x0]) * ax
        bottom = np.float64(features[ch, y1, x0]) + (np.float64(features[ch, y1, x1]) - features[ch, y1, x0]) * ax
        return top + (bottom - top) * ay

    @njit(inline="always")
    def _surface_take(features, flow, qx, qy, alpha, depth, margin, h, w, hp, wp, still2, steps, residual_full,
                      residual_none, tear_full, tear_none, front_full, front_none, magnified_full, magnified_none
                      ):  # pragma: no cover - compiled
        """renderer.surface_points and draw_stretched_surface for one pixel q (padded coordinates): how much of it
        comes from the surface point s (s + flow(s) = q), and s (0 and q when it is no candidate)."""
        fx, fy, _ = _source(flow, int(qy), int(qx), margin, h, w, still2)
        sx, sy = qx - np.float64(fx), qy - np.float64(fy)
        converged2 = CONVERGED_PX * CONVERGED_PX
        first_stretch = 0.0
        for step in range(steps):
            gx, gy, dxx, dxy, dyx, dyy = _flow_at(flow, sx, sy, margin, h, w, hp, wp, still2)
            stretch, det = _stretch(dxx, dxy, dyx, dyy)
            if step == 0:
                first_stretch = stretch
                if not (alpha < 1 or stretch > magnified_full):  # take would be 0
                    return 0.0, sx, sy
            if det > 1e-6:
                rx, ry = sx + gx - qx, sy + gy - qy
                a, b, c, d = 1 + dxx, dxy, dyx, 1 + dyy
                ux, uy = (d * rx - b * ry) / det, (a * ry - c * rx) / det
                sx, sy = sx - ux, sy - uy
                if ux * ux + uy * uy < converged2:  # smooth flows converge in a step or two
                    break
        gx, gy, dxx, dxy, dyx, dyy = _flow_at(flow, sx, sy, margin, h, w, hp, wp, still2)
        stretch, det = _stretch(dxx, dxy, dyx, dyy)
        if not det > 1e-6:
            return 0.0, sx, sy
        residual = np.hypot(sx + gx - qx, sy + gy - qy)
        belief = _ramp(residual, residual_full, residual_none) * _ramp(stretch, tear_full, tear_none)
        front = _ramp(depth - _feature_at(features, 3, sx, sy, hp, wp), front_full, front_none)
        magnified = 1 - _ramp(min(stretch, first_stretch), magnified_full, magnified_none)
        return belief * front * max(1 - alpha, magnified), sx, sy

    @njit(parallel=True, cache=True, nogil=True)
    def _render_frames(features, metric, exp_z, per_target, flow, margin, still2, border_trust, preference, surface,
                       lv_h, lv_w, off, pyr, canvases, out):  # pragma: no cover - compiled
        """features [B, 5, H', W'] (colour, metric, inside; padded), metric/exp_z [B, H', W'], flow [F, 2, h, w]
        (frame-major, F = n * B); surface: the stretched-surface settings (steps, then renderer's SURFACE_RESIDUAL,
        SURFACE_STRETCH, FRONT_GAP and MAGNIFIED pairs); scratch: canvases [F, (H' + 3) * (W' + 3), 8] (the splat;
        then colour, alpha in column 5 and fill weight in column 6) and pyr [F, pixels of the coarser levels, 4];
        out [B, n, h, w, 3]."""
        frames, _, h, w = flow.shape
        pictures, c, hp, wp = features.shape
        row = wp + 3
        levels = len(lv_h)
        need = np.zeros(frames, dtype=np.int64)
        holes = np.zeros(frames, dtype=np.bool_)
        magnified = np.zeros(frames)
        top_weight = np.zeros(frames)
        for frame in prange(frames):
            f = np.int64(frame)  # prange's index is unsigned; mixing it with ints would type as float
            p = f % pictures
            canvas = canvases[f]
            canvas[:] = 0
            zmax = np.full(canvas.shape[0] if per_target else 1, -np.inf)
            _splat_picture(features[p], exp_z[p], metric[p], per_target, flow[f], margin, still2, canvas, zmax)
            # Normalise; alpha (coverage and border trust) replaces the weight sum in column 5.
            own = np.empty(1, dtype=canvas.dtype)  # a still pixel's own weight, rounded like the canvas
            depth_scale = 0.0
            any_hole = False
            for y in range(hp):
                for x in range(wp):
                    t = (y + 1) * row + x + 1
                    den = canvas[t, 5]
                    _, _, still = _source(flow[f], y, x, margin, h, w, still2)
                    alone = False
                    if still:
                        own[0] = (np.exp(min(np.float64(metric[p, y, x]) - zmax[t], 0.0)) if per_target
                                  else exp_z[p, y, x])
                        alone = den == own[0]
                    if alone:  # nothing else reaches it: f * e / e can round, so keep f itself
                        for ch in range(c):
                            canvas[t, ch] = features[p, ch, y, x]
                    else:
                        inverse = canvas.dtype.type(1) / den if den > 0 else canvas.dtype.type(0)
                        for ch in range(c):
                            canvas[t, ch] *= inverse
                    depth_scale = max(depth_scale, np.float64(canvas[t, 3]))
                    trust = border_trust + (1 - border_trust) * np.float64(canvas[t, 4])
                    alpha = min(max(np.float64(canvas[t, 6]) * 4, 0.0), 1.0) * trust
                    any_hole |= alpha < 1
                    canvas[t, 5] = alpha
            holes[f] = any_hole
            # How much the map magnifies at most in each bilinear cell, in column 7 at the cell's top-left corner
            # (renderer.cell_stretch_bound): only holes and pixels whose first guess lies in a cell bounded above
            # MAGNIFIED's first factor can take the surface, so the others skip the Newton steps.
            most = 1.0
            if hp < 2 or wp < 2:
                canvas[:, 7] = np.inf
                most = np.inf
            for y in range(hp - 1):
                for x in range(wp - 1):
                    bound = _cell_bound(flow[f], y, x, margin, h, w, hp, wp, still2)
                    canvas[(y + 1) * row + x + 1, 7] = bound
                    most = max(most, bound)
            magnified[f] = most
            depth_scale = max(depth_scale, 1e-6)
            # The background-preferring fill weight replaces the coverage in column 6.
            any_empty = False
            largest = 0.0
            for y in range(hp):
                for x in range(wp):
                    t = (y + 1) * row + x + 1
                    alpha = np.float64(canvas[t, 5])
                    weight = alpha * np.exp(-preference * min(max(np.float64(canvas[t, 3]) / depth_scale, 0.0), 1.0))
                    any_empty |= not weight > 0
                    canvas[t, 6] = weight
                    largest = max(largest, np.float64(canvas[t, 6]))  # as stored, like the torch path's amax
            top_weight[f] = max(largest, 1e-12)
            # Pyramid levels while some weight is zero: the first from the canvas, the rest inside pyr.
            need[f] = 0
            if any_empty and levels > 1:
                _pool_level(canvas, hp, wp, pyr[f], 1, lv_h, lv_w, off)
                need[f] = levels - 1
                for level in range(1, levels - 1):
                    if np.all(pyr[f, off[level]:off[level] + lv_h[level] * lv_w[level], 3] > 0):
                        need[f] = level
                        break
                    _pool_level(canvas, hp, wp, pyr[f], level + 1, lv_h, lv_w, off)
        # As in the torch path, the pyramid is as deep as the chunk's most holed frame needs, and no frame
        # is filled when no frame of the chunk has a hole.
        top, fill = need.max(), holes.any()
        for frame in prange(frames):
            f = np.int64(frame)
            p, k = f % pictures, f // pictures
            canvas = canvases[f]
            if fill and top > 0:
                for level in range(need[f] + 1, top + 1):  # coarser levels this frame did not need itself
                    _pool_level(canvas, hp, wp, pyr[f], level, lv_h, lv_w, off)
                for i in range(off[top], off[top] + lv_h[top] * lv_w[top]):
                    for ch in range(3):
                        pyr[f, i, ch] = pyr[f, i, ch] / max(np.float64(pyr[f, i, 3]), 1e-12)
                for level in range(top - 1, 0, -1):
                    _pull(pyr[f, off[level]:], lv_h[level], lv_w[level], pyr[f, off[level + 1]:],
                          lv_h[level + 1], lv_w[level + 1])
            # The finest level's estimate is only needed where the output is not fully trusted.
            max_w = top_weight[f]
            coarse = pyr[f, off[1]:]
            hc, wc = lv_h[min(1, levels - 1)], lv_w[min(1, levels - 1)]
            scale_y, scale_x = np.float32(hc) / np.float32(hp), np.float32(wc) / np.float32(wp)
            redraw = holes[f] or magnified[f] > surface[7]  # else _surface_take is 0 for every pixel
            for y in range(h):
                y0, y1, ly = _source_index(y + margin, scale_y, hc)
                for x in range(w):
                    t = (y + margin + 1) * row + x + margin + 1
                    alpha = np.float64(canvas[t, 5])
                    candidate = redraw and alpha < 1
                    if redraw and not candidate:
                        fx, fy, _ = _source(flow[f], y + margin, x + margin, margin, h, w, still2)
                        ix, iy, _, _, _, _, _, _ = _cell(np.float64(x + margin) - fx, np.float64(y + margin) - fy,
                                                         hp, wp)
                        candidate = canvas[(iy + 1) * row + ix + 1, 7] > surface[7]
                    if (alpha >= 1 or not fill) and not candidate:
                        out[p, k, y, x, 0] = canvas[t, 0]
                        out[p, k, y, x, 1] = canvas[t, 1]
                        out[p, k, y, x, 2] = canvas[t, 2]
                        continue
                    v0, v1, v2 = np.float64(canvas[t, 0]), np.float64(canvas[t, 1]), np.float64(canvas[t, 2])
                    if alpha < 1 and fill:
                        x0, x1, lx = _source_index(x + margin, scale_x, wc)
                        weight = np.float64(canvas[t, 6])
                        trust = min(weight / max_w * 4, 1.0) if top > 0 else 1.0
                        own = weight / max(weight, 1e-12)
                        up0 = _upsampled(coarse, hc, wc, y0, y1, ly, x0, x1, lx, 0) if top > 0 else 0.0
                        up1 = _upsampled(coarse, hc, wc, y0, y1, ly, x0, x1, lx, 1) if top > 0 else 0.0
                        up2 = _upsampled(coarse, hc, wc, y0, y1, ly, x0, x1, lx, 2) if top > 0 else 0.0
                        v0 = v0 * alpha + (v0 * own * trust + up0 * (1 - trust)) * (1 - alpha)
                        v1 = v1 * alpha + (v1 * own * trust + up1 * (1 - trust)) * (1 - alpha)
                        v2 = v2 * alpha + (v2 * own * trust + up2 * (1 - trust)) * (1 - alpha)
                    if candidate:
                        take, sx, sy = _surface_take(
                            features[p], flow[f], np.float64(x + margin), np.float64(y + margin), alpha,
                            np.float64(canvas[t, 3]), margin, h, w, hp, wp, still2, int(surface[0]), surface[1],
                            surface[2], surface[3], surface[4], surface[5], surface[6], surface[7], surface[8])
                        if take > 0:
                            v0 += (_feature_at(features[p], 0, sx, sy, hp, wp) - v0) * take
                            v1 += (_feature_at(features[p], 1, sx, sy, hp, wp) - v1) * take
                            v2 += (_feature_at(features[p], 2, sx, sy, hp, wp) - v2) * take
                    out[p, k, y, x, 0] = v0
                    out[p, k, y, x, 1] = v1
                    out[p, k, y, x, 2] = v2

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
                  margin: int, still_below_px: float, border_trust: float, background_preference: float,
                  surface: tuple[float, ...]) -> torch.Tensor:
    """Frames [B, n, h, w, 3] from padded picture features [B, 5, H', W'] and flow [n * B, 2, h, w]; surface: the
    stretched-surface settings (Newton steps, then the residual, stretch, front-gap and magnification pairs)."""
    dtype = features.dtype
    pictures, channels, hp, wp = features.shape
    if channels != 5:  # _splat_picture's registers hold exactly colour, metric and inside
        raise ValueError(f"features: expected 5 channels (colour, metric, inside), got {channels}")
    frames, _, h, w = flow.shape
    shapes = pyramid_shapes(hp, wp)
    sizes = [a * b for a, b in shapes]
    offsets = np.array([0] + [sum(sizes[1:level]) for level in range(1, len(shapes))], dtype=np.int64)
    pyr = np.empty((frames, max(1, sum(sizes[1:])), 4), dtype=np.float32 if dtype == torch.float32 else np.float64)
    canvases = np.empty((frames, (hp + 3) * (wp + 3), 8), dtype=pyr.dtype)  # column 7 pads rows to 32 bytes
    out = torch.empty(pictures, frames // pictures, h, w, 3, dtype=dtype)
    z = as_array(metric, dtype)
    still2 = np.array(still_below_px ** 2, dtype=pyr.dtype)[()]
    cpu.use_torch_threads()
    _render_frames(as_array(features, dtype), z, z if exp_z is None else as_array(exp_z, dtype), exp_z is None,
                   as_array(flow, dtype), margin, still2, float(border_trust), float(background_preference),
                   np.array(surface, dtype=np.float64), np.array([s[0] for s in shapes], dtype=np.int64), np.array([s[1] for s in shapes], dtype=np.int64),
                   offsets, pyr, canvases, out.numpy())
    return out
