"""Fused softmax splatting on CPU, compiled by numba: one pass over the source pixels per frame.

numba ships as wheels (no system compiler needed) and compiles these functions on first use (seconds, then
cached on disk). Frames run in parallel, each into its own channel-last canvas, so no two threads write the
same memory. When numba cannot be imported, `available()` is False and the plain-torch operator is used.
cpu_render.py builds the renderer's fused frame pipeline from the same pieces.
"""
from __future__ import annotations

import os
import re

import numpy as np
import torch

try:  # optional at run time: the plain-torch operator is the fallback
    import numba
    from numba import njit, prange
except Exception as error:  # noqa: BLE001 - any import failure (missing, numpy mismatch) means "fall back"
    numba = None
    IMPORT_ERROR: str | None = f"{type(error).__name__}: {error}"
else:
    IMPORT_ERROR = None


def available() -> bool:
    return numba is not None


def use_torch_threads() -> None:
    """Run numba's parallel loops on as many threads as torch uses (OMP_NUM_THREADS, torch.set_num_threads)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def module_cache_dir(module_name: str) -> str | None:
    """Point numba's disk cache at a folder of this module's own (returns the setting to restore).

    numba pickles the module's name with the cached code, and the same file is imported under different
    names (gid_engine.render... in tests and the CLI, the pack's folder name inside ComfyUI); code cached
    under one name fails to load under another, so each name keeps its own folder.
    """
    previous = numba.config.CACHE_DIR
    base = previous or os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    numba.config.CACHE_DIR = os.path.join(base, "numba-" + re.sub(r"[^A-Za-z0-9_.-]", "_", module_name))
    return previous


def as_array(tensor: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """A numpy view of a CPU tensor (a copy only when the dtype or layout has to change)."""
    return tensor.detach().to(dtype).contiguous().numpy()


_previous_cache_dir = module_cache_dir(__name__) if numba is not None else None

if numba is not None:
    @njit(inline="always")
    def landing(fx, fy, y, x, h, w, row):  # pragma: no cover - compiled
        """Canvas index of the top-left corner where source (y, x) displaced by (fx, fy) lands, and the
        fractional offsets."""
        # Positions are clamped into a ring of one pixel (the canvas has a spare row/column beyond it):
        # what lands there is outside the picture and is cut away, so no corner needs a bounds test.
        tx = min(max(x + np.float64(fx), -1.0), np.float64(w))
        ty = min(max(y + np.float64(fy), -1.0), np.float64(h))
        x0, y0 = np.floor(tx), np.floor(ty)
        return (int(y0) + 1) * row + int(x0) + 1, tx - x0, ty - y0

    @njit(inline="always")
    def _target(flow, y, x, h, w, row):  # pragma: no cover - compiled
        return landing(flow[0, y, x], flow[1, y, x], y, x, h, w, row)

    @njit(inline="always")
    def raise_shift(zmax, t, row, ax, ay, z):  # pragma: no cover - compiled
        """Per-target shift: metric z reaches the four corners at t with nonzero bilinear weight."""
        if (1 - ax) * (1 - ay) > 0:
            zmax[t] = max(zmax[t], z)
        if ax * (1 - ay) > 0:
            zmax[t + 1] = max(zmax[t + 1], z)
        if (1 - ax) * ay > 0:
            zmax[t + row] = max(zmax[t + row], z)
        if ax * ay > 0:
            zmax[t + row + 1] = max(zmax[t + row + 1], z)

    @njit(inline="always")
    def _add(flat, base, c, weight, bilinear, features, y, x):  # pragma: no cover - compiled
        wt = flat.dtype.type(weight)  # float32 products for float32 canvases: no conversions per channel
        for ch in range(c):
            flat[base + ch] += wt * features[ch, y, x]
        flat[base + c] += wt
        flat[base + c + 1] += flat.dtype.type(bilinear)

    @njit(cache=True, nogil=True)
    def splat_frame(features, flow, metric, exp_z, per_target, acc, zmax):  # pragma: no cover - compiled
        """Splat one frame: features [C, H, W], flow [2, H, W], metric/exp_z [H, W] into `acc`, normalised.

        acc [(H + 3) * (W + 3), C + 2] (zeros; target (y, x) at (y + 1) * (W + 3) + x + 1) ends up holding
        the splatted features, then the softmax weight sum and the coverage. zmax [same rows] (-inf) is
        the per-target shift, filled here when per_target (else exp_z = exp(metric - max) is used).
        """
        c, h, w = features.shape
        row, cells = w + 3, c + 2
        flat = acc.reshape(acc.size)
        if per_target:  # the largest metric among each target's contributors (zero-weight corners excluded)
            for y in range(h):
                for x in range(w):
                    t, ax, ay = _target(flow, y, x, h, w, row)
                    raise_shift(zmax, t, row, ax, ay, np.float64(metric[y, x]))
        for y in range(h):
            for x in range(w):
                t, ax, ay = _target(flow, y, x, h, w, row)
                b00, b01, b10, b11 = (1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay
                if per_target:  # clamped: a zero-weight corner may see a target nobody reaches (-inf)
                    z = np.float64(metric[y, x])
                    w00 = b00 * np.exp(min(z - zmax[t], 0.0))
                    w01 = b01 * np.exp(min(z - zmax[t + 1], 0.0))
                    w10 = b10 * np.exp(min(z - zmax[t + row], 0.0))
                    w11 = b11 * np.exp(min(z - zmax[t + row + 1], 0.0))
                else:
                    e = np.float64(exp_z[y, x])
                    w00, w01, w10, w11 = b00 * e, b01 * e, b10 * e, b11 * e
                # Positions and weights in float64 (exact sums of pixel and flow); accumulation in the
                # canvas's precision, like the torch operator.
                if ax == 0 and ay == 0:  # lands exactly on a pixel (e.g. still): one corner
                    _add(flat, t * cells, c, w00, b00, features, y, x)
                    continue
                _add(flat, t * cells, c, w00, b00, features, y, x)
                _add(flat, (t + 1) * cells, c, w01, b01, features, y, x)
                _add(flat, (t + row) * cells, c, w10, b10, features, y, x)
                _add(flat, (t + row + 1) * cells, c, w11, b11, features, y, x)
        own = np.empty(1, dtype=acc.dtype)  # a still pixel's own weight, rounded like the accumulator
        for y in range(h):
            for x in range(w):
                t = (y + 1) * row + x + 1
                den = acc[t, c]
                if flow[0, y, x] == 0 and flow[1, y, x] == 0:
                    own[0] = (np.exp(min(np.float64(metric[y, x]) - zmax[t], 0.0)) if per_target
                              else exp_z[y, x])
                    if den == own[0]:  # nothing else reaches it: f * e / e can round, so keep f itself
                        for ch in range(c):
                            acc[t, ch] = features[ch, y, x]
                        continue
                inverse = acc.dtype.type(1) / den if den > 0 else acc.dtype.type(0)
                for ch in range(c):
                    acc[t, ch] *= inverse

    @njit(parallel=True, cache=True, nogil=True)
    def _splat_frames(features, flow, metric, exp_z, per_target, out, coverage):  # pragma: no cover - compiled
        n, _, h, w = flow.shape
        c = features.shape[1]
        for frame in prange(n):
            f = np.int64(frame)  # prange's index is unsigned; mixing it with ints would type as float
            fi, mi = f % features.shape[0], f % metric.shape[0]
            acc = np.zeros(((h + 3) * (w + 3), c + 2), dtype=out.dtype)
            zmax = np.full((h + 3) * (w + 3) if per_target else 1, -np.inf)
            splat_frame(features[fi], flow[f], metric[mi], exp_z[mi], per_target, acc, zmax)
            for y in range(h):
                for x in range(w):
                    t = (y + 1) * (w + 3) + x + 1
                    for ch in range(c):
                        out[f, ch, y, x] = acc[t, ch]
                    coverage[f, 0, y, x] = acc[t, c + 1]


def softmax_splat(features: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor, exp_z: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused operator on CPU tensors (shapes already checked by splat.softmax_splat).

    metric [N or 1, H, W]; exp_z (same shape): exp(metric - frame max) when every frame's metrics span less
    than SAFE_RANGE; None selects the per-target shift (a first pass finds each target's largest metric).
    """
    n, _, h, w = flow.shape
    dtype = features.dtype
    out = torch.empty(n, features.shape[1], h, w, dtype=dtype)
    coverage = torch.empty(n, 1, h, w, dtype=dtype)
    z = as_array(metric, dtype)
    per_target = exp_z is None
    use_torch_threads()
    _splat_frames(as_array(features, dtype), as_array(flow, dtype), z, z if per_target else as_array(exp_z, dtype),
                  per_target, out.numpy(), coverage.numpy())
    return out, coverage


if numba is not None:
    @njit(parallel=True, cache=True, nogil=True)
    def _moving_extent(flow, still2):  # pragma: no cover - compiled
        n = flow.shape[0]
        extent = np.zeros(n)
        for frame in prange(n):
            f = np.int64(frame)
            largest = 0.0
            for y in range(flow.shape[2]):
                for x in range(flow.shape[3]):
                    largest = max(largest, abs(flow[f, 0, y, x]), abs(flow[f, 1, y, x]))
            if largest * largest < 2 * still2:  # a displacement this short may be snapped: look closer
                largest = 0.0
                for y in range(flow.shape[2]):
                    for x in range(flow.shape[3]):
                        fx, fy = flow[f, 0, y, x], flow[f, 1, y, x]
                        if not fx * fx + fy * fy < still2:
                            largest = max(largest, abs(fx), abs(fy))
            extent[f] = largest
        return extent.max() if n else 0.0


if numba is not None:
    numba.config.CACHE_DIR = _previous_cache_dir


def moving_extent(flow: torch.Tensor, still_below_px: float) -> float:
    """Largest |x| or |y| displacement in flow [N, 2, H, W] among displacements not shorter than still_below_px."""
    array = as_array(flow, flow.dtype)
    use_torch_threads()
    return float(_moving_extent(array, np.array(still_below_px ** 2, dtype=array.dtype)[()]))
