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

    @njit(inline="always")
    def _pad_flow(flow, margin, still2, padded):  # pragma: no cover - compiled
        """padded [2, H', W'] = the flow [2, h, w] replicated into the margin, invisible drift snapped to 0 (_source),
        so every later lookup is one load."""
        h, w = flow.shape[1:]
        _, hp, wp = padded.shape
        for y in range(hp):
            for x in range(wp):
                fx, fy, _ = _source(flow, y, x, margin, h, w, still2)
                padded[0, y, x], padded[1, y, x] = fx, fy

    @njit(cache=True, nogil=True, fastmath=True)
    def _magnified_cells(padded, t, flags):  # pragma: no cover - compiled
        """flags [H', W'] = 1 where the bilinear cell whose top-left corner is that pixel magnifies by more than t
        somewhere (renderer.cell_stretch_bound: the largest stretch is at one of the cell's four corners), tested
        without square roots (stretch <= t iff S <= 2t^2 and t^2 S - det^2 <= t^4); returns whether any cell does.
        The torch path takes the grid's border cells as candidates too, for first guesses s = q - flow(q) beyond the
        grid, where _bilinear holds the border; _render_frames takes those as candidates itself."""
        _, hp, wp = padded.shape
        t2 = t * t
        flags[:] = 0
        anywhere = False
        for y in range(hp - 1):
            for x in range(wp - 1):
                a0, a1 = np.float64(padded[0, y, x]), np.float64(padded[0, y, x + 1])
                a2, a3 = np.float64(padded[0, y + 1, x]), np.float64(padded[0, y + 1, x + 1])
                b0, b1 = np.float64(padded[1, y, x]), np.float64(padded[1, y, x + 1])
                b2, b3 = np.float64(padded[1, y + 1, x]), np.float64(padded[1, y + 1, x + 1])
                most = False
                for top in range(2):  # d/dx along the cell's top or bottom edge
                    a = 1 + (a1 - a0 if top else a3 - a2)
                    c = b1 - b0 if top else b3 - b2
                    for left in range(2):  # d/dy along its left or right edge
                        b = a2 - a0 if left else a3 - a1
                        d = 1 + (b2 - b0 if left else b3 - b1)
                        squares, det = a * a + b * b + c * c + d * d, a * d - b * c
                        most |= squares > 2 * t2 or t2 * squares - det * det > t2 * t2
                flags[y, x] = most
                anywhere |= most
        return anywhere

    @njit(cache=True, nogil=True)
    def _splat_picture(features, exp_z, metric, per_target, padded, canvas, zmax):  # pragma: no cover - compiled
        """Softmax-splat the padded picture features [5, H', W'] (colour, metric, inside) by the padded flow
        [2, H', W'] (_pad_flow) into canvas [(H' + 3) * (W' + 3), 8]: the five features, the softmax weight sum
        and the coverage (cpu.splat_frame with the channel count fixed, so each corner is seven adds of values
        held in registers)."""
        _, hp, wp = features.shape
        row = wp + 3
        if per_target:
            for y in range(hp):
                for x in range(wp):
                    t, ax, ay = cpu.landing(padded[0, y, x], padded[1, y, x], y, x, hp, wp, row)
                    cpu.raise_shift(zmax, t, row, ax, ay, np.float64(metric[y, x]))
        one = canvas.dtype.type(1)
        for y in range(hp):
            for x in range(wp):
                t, ax, ay = cpu.landing(padded[0, y, x], padded[1, y, x], y, x, hp, wp, row)
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
    def _flow_at(padded, sx, sy, hp, wp):  # pragma: no cover - compiled
        """The padded flow at (sx, sy), bilinear, and its derivatives within the cell: fx, fy, dfx/dx, dfx/dy,
        dfy/dx, dfy/dy (renderer._bilinear)."""
        x0, y0, x1, y1, ax, ay, inside_x, inside_y = _cell(sx, sy, hp, wp)
        f00x, f01x = np.float64(padded[0, y0, x0]), np.float64(padded[0, y0, x1])
        f10x, f11x = np.float64(padded[0, y1, x0]), np.float64(padded[0, y1, x1])
        f00y, f01y = np.float64(padded[1, y0, x0]), np.float64(padded[1, y0, x1])
        f10y, f11y = np.float64(padded[1, y1, x0]), np.float64(padded[1, y1, x1])
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

    @njit(inline="always")
    def _blend(features, ch, x0, y0, x1, y1, ax, ay):  # pragma: no cover - compiled
        top = np.float64(features[ch, y0, x0]) + (np.float64(features[ch, y0, x1]) - features[ch, y0, x0]) * ax
        bottom = np.float64(features[ch, y1, x0]) + (np.float64(features[ch, y1, x1]) - features[ch, y1, x0]) * ax
        return top + (bottom - top) * ay

    @njit(inline="always")
    def _redraw_row(features, padded, qy, row, count, hp, wp, surface):  # pragma: no cover - compiled
        """renderer.surface_take for the `count` candidates of one output row (padded row qy): how much of each
        pixel q comes from the surface point s (s + flow(s) = q), blended into its colour. row [count, 12] holds
        per candidate its padded x, alpha, splatted depth and colour (columns 3-5, read and written back), then
        scratch: s (6, 7), the stretch at the first guess (8), the stretch and residual where Newton stopped (9,
        10) and a state (11; 0: takes nothing, 1: stepping, 2: stopped).
        The work runs in passes over the row, one Newton step a pass: a pixel's steps wait on each other, the
        row's pixels do not, so the core overlaps many pixels' lookups instead of waiting on one pixel's chain
        (the redraw a sixth faster than pixel by pixel, with the same arithmetic)."""
        steps, residual_full, residual_none = int(surface[0]), surface[1], surface[2]
        tear_full, tear_none, front_full, front_none = surface[3], surface[4], surface[5], surface[6]
        magnified_full, magnified_none, covered, converged = surface[7], surface[8], surface[9], surface[10]
        converged2 = converged * converged
        t2 = magnified_full * magnified_full
        for step in range(steps):
            for i in range(count):
                if step == 0:
                    qx = int(row[i, 0])
                    row[i, 6] = row[i, 0] - np.float64(padded[0, qy, qx])
                    row[i, 7] = qy - np.float64(padded[1, qy, qx])
                    row[i, 11] = 1.0
                elif row[i, 11] != 1.0:
                    continue
                sx, sy = row[i, 6], row[i, 7]
                gx, gy, dxx, dxy, dyx, dyy = _flow_at(padded, sx, sy, hp, wp)
                a, b, c, d = 1 + dxx, dxy, dyx, 1 + dyy
                det = a * d - b * c
                if step == 0:
                    # Not magnified beyond t (stretch_of <= t, without its square roots): S <= 2t^2,
                    # t^2 S - det^2 <= t^4; a covered pixel then takes nothing.
                    squares = a * a + b * b + c * c + d * d
                    if row[i, 1] >= covered and squares <= 2 * t2 and t2 * squares - det * det <= t2 * t2:
                        row[i, 11] = 0.0
                        continue
                    row[i, 8] = _stretch(dxx, dxy, dyx, dyy)[0]
                if not det > 1e-6:  # folded: no step is taken, and no point is believed
                    row[i, 11] = 0.0
                    continue
                rx, ry = sx + gx - row[i, 0], sy + gy - qy
                ux, uy = (d * rx - b * ry) / det, (a * ry - c * rx) / det
                row[i, 6], row[i, 7] = sx - ux, sy - uy
                if ux * ux + uy * uy < converged2:  # smooth flows converge in a step or two
                    row[i, 9] = _stretch(dxx, dxy, dyx, dyy)[0] if step else row[i, 8]
                    row[i, 10] = np.sqrt(rx * rx + ry * ry)
                    row[i, 11] = 2.0
        for i in range(count):
            state = row[i, 11]
            if state == 1.0:  # still stepping after the last step: where it stands now
                sx, sy = row[i, 6], row[i, 7]
                gx, gy, dxx, dxy, dyx, dyy = _flow_at(padded, sx, sy, hp, wp)
                if not (1 + dxx) * (1 + dyy) - dxy * dyx > 1e-6:
                    continue
                row[i, 9] = _stretch(dxx, dxy, dyx, dyy)[0]
                row[i, 10] = np.hypot(sx + gx - row[i, 0], sy + gy - qy)
            elif state != 2.0:
                continue
            stretch = row[i, 9]
            belief = _ramp(row[i, 10], residual_full, residual_none) * _ramp(stretch, tear_full, tear_none)
            x0, y0, x1, y1, ax, ay, _, _ = _cell(row[i, 6], row[i, 7], hp, wp)
            front = _ramp(row[i, 2] - _blend(features, 3, x0, y0, x1, y1, ax, ay), front_full, front_none)
            magnified = 1 - _ramp(min(stretch, row[i, 8]), magnified_full, magnified_none)
            take = belief * front * max(_ramp(row[i, 1], 0.0, covered), magnified)
            if take > 0:
                for ch in range(3):
                    row[i, 3 + ch] += (_blend(features, ch, x0, y0, x1, y1, ax, ay) - row[i, 3 + ch]) * take

    @njit(parallel=True, cache=True, nogil=True)
    def _render_frames(features, metric, exp_z, per_target, flow, margin, still2, border_trust, preference, surface,
                       lv_h, lv_w, off, pyr, canvases, padded, flags, out):  # pragma: no cover - compiled
        """features [B, 5, H', W'] (colour, metric, inside; padded), metric/exp_z [B, H', W'], flow [F, 2, h, w]
        (frame-major, F = n * B); surface: the stretched-surface settings (steps, then renderer's SURFACE_RESIDUAL,
        SURFACE_STRETCH, FRONT_GAP and MAGNIFIED pairs, COVERED, SURFACE_CONVERGED); scratch: canvases
        [F, (H' + 3) * (W' + 3), 8] (the splat; then colour, alpha in column 5 and fill weight in column 6), pyr
        [F, pixels of the coarser levels, 4], padded [F, 2, H', W'] (_pad_flow) and flags [F, H', W']
        (_magnified_cells); out [B, n, h, w, 3]."""
        frames, _, h, w = flow.shape
        pictures, c, hp, wp = features.shape
        row = wp + 3
        levels = len(lv_h)
        need = np.zeros(frames, dtype=np.int64)
        holes = np.zeros(frames, dtype=np.bool_)
        magnified = np.zeros(frames, dtype=np.bool_)
        top_weight = np.zeros(frames)
        for frame in prange(frames):
            f = np.int64(frame)  # prange's index is unsigned; mixing it with ints would type as float
            p = f % pictures
            canvas = canvases[f]
            canvas[:] = 0
            zmax = np.full(canvas.shape[0] if per_target else 1, -np.inf)
            _pad_flow(flow[f], margin, still2, padded[f])
            magnified[f] = _magnified_cells(padded[f], surface[7], flags[f])
            _splat_picture(features[p], exp_z[p], metric[p], per_target, padded[f], canvas, zmax)
            # Normalise; alpha (coverage and border trust) replaces the weight sum in column 5.
            own = np.empty(1, dtype=canvas.dtype)  # a still pixel's own weight, rounded like the canvas
            depth_scale = 0.0
            any_hole = False
            for y in range(hp):
                for x in range(wp):
                    t = (y + 1) * row + x + 1
                    den = canvas[t, 5]
                    still = padded[f, 0, y, x] == 0 and padded[f, 1, y, x] == 0
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
            redraw = holes[f] or magnified[f]  # else the redraw takes nothing anywhere
            frame_flow, frame_flags, picture = padded[f], flags[f], features[p]
            covered, may_magnify = surface[9], magnified[f]
            batch = np.empty((w, 12))  # the redraw's candidates of one output row (_redraw_row)
            for y in range(h):
                y0, y1, ly = _source_index(y + margin, scale_y, hc)
                count = 0
                for x in range(w):
                    t = (y + margin + 1) * row + x + margin + 1
                    alpha = np.float64(canvas[t, 5])
                    candidate = redraw and alpha < covered
                    if redraw and not candidate and may_magnify:  # the first guess's cell may magnify
                        gx = np.float64(x + margin) - frame_flow[0, y + margin, x + margin]
                        gy = np.float64(y + margin) - frame_flow[1, y + margin, x + margin]
                        ix, iy, _, _, _, _, _, _ = _cell(gx, gy, hp, wp)
                        # Beyond the grid (a flow larger than the capped margin) the border is held: no cell bound.
                        candidate = frame_flags[iy, ix] != 0 or not (0 <= gx <= wp - 1 and 0 <= gy <= hp - 1)
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
                    if candidate:  # redrawn with the row's other candidates below
                        batch[count, 0], batch[count, 1], batch[count, 2] = x + margin, alpha, canvas[t, 3]
                        batch[count, 3], batch[count, 4], batch[count, 5] = v0, v1, v2
                        count += 1
                        continue
                    out[p, k, y, x, 0] = v0
                    out[p, k, y, x, 1] = v1
                    out[p, k, y, x, 2] = v2
                if count:
                    _redraw_row(picture, frame_flow, y + margin, batch, count, hp, wp, surface)
                    for i in range(count):
                        x = int(batch[i, 0]) - margin
                        out[p, k, y, x, 0] = batch[i, 3]
                        out[p, k, y, x, 1] = batch[i, 4]
                        out[p, k, y, x, 2] = batch[i, 5]

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
    stretched-surface settings (Newton steps, then the residual, stretch, front-gap and magnification pairs, then the
    covered alpha and the Newton step that counts as converged)."""
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
    padded = np.empty((frames, 2, hp, wp), dtype=pyr.dtype)
    flags = np.empty((frames, hp, wp), dtype=np.uint8)
    out = torch.empty(pictures, frames // pictures, h, w, 3, dtype=dtype)
    z = as_array(metric, dtype)
    still2 = np.array(still_below_px ** 2, dtype=pyr.dtype)[()]
    cpu.use_torch_threads()
    _render_frames(as_array(features, dtype), z, z if exp_z is None else as_array(exp_z, dtype), exp_z is None,
                   as_array(flow, dtype), margin, still2, float(border_trust), float(background_preference),
                   np.array(surface, dtype=np.float64), np.array([s[0] for s in shapes], dtype=np.int64),
                   np.array([s[1] for s in shapes], dtype=np.int64),
                   offsets, pyr, canvases, padded, flags, out.numpy())
    return out
