"""Renderers: turn a picture and a motion texture into frames.

Every renderer implements `Renderer.render_chunk`; `render_frames` drives any of them over a motion
texture in memory-bounded chunks with progress. The training-free `SplatRenderer` softmax-splats the
picture itself; a learned feature-pyramid renderer plugs into the same interface.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Protocol

import torch
import torch.nn.functional as F

from .. import checks, memory
from ..sources.base import volume_bytes
from ..spectral.motion import MotionTexture
from .kernels import cpu as cpu_kernel
from .kernels import cpu_render, fallback
from .splat import BACKENDS, shifted_exp, softmax_splat

Progress = Callable[[int, int], None]

# The depth proxy is in pixels; dividing by the picture's long side (times this reference) makes the
# same temperature behave alike at 256 px and at 4K.
METRIC_REFERENCE_SIZE = 256
DEFAULT_TEMPERATURE = 0.5
# The temperatures the nodes and the CLI accept.
TEMPERATURE = checks.Range(0.0, 100.0)
# An importance mask of 1 vs 0 at the default temperature: exp(20) to 1, the brighter pixel is drawn in front.
IMPORTANCE_SCALE = 40.0
# Displacements shorter than this (pixels) are not drawn: far below what anyone can see.
STILL_BELOW_PX = 1 / 32
# Pixels splatted per chunk (frames x H x W); bounds the operator's scratch memory (about 150 B/pixel).
CHUNK_PIXELS = 1 << 22
# At most this many frames per chunk, so progress (and cancel) come often even for small pictures.
CHUNK_FRAMES = 16
# Hole filling weighs surrounding pixels by exp(-BACKGROUND_PREFERENCE * depth / max depth).
BACKGROUND_PREFERENCE = 2.0
# How far replicated border content that moves into the frame is believed (the rest comes from the fill).
BORDER_TRUST = 0.25
# Stretch holes: Newton steps that find where a hole pixel's surface comes from (s + flow(s) = q).
SURFACE_STEPS = 5
# Newton stops early once every step moves the surface points less than this (pixels).
SURFACE_CONVERGED = 1e-3
# A surface point is believed fully when s + flow(s) lands within the first distance (pixels) of the hole pixel,
# not at all beyond the second.
SURFACE_RESIDUAL = (0.25, 0.5)
# The map stretches the surface by up to the first factor there: a stretch hole, filled from the surface. From the
# second on it is a tear between things that move apart (a disocclusion), filled from what lies behind.
SURFACE_STRETCH = (2.0, 4.0)
# Something else in front: the splatted depth exceeds the surface point's metric by the first amount (metric units)
# or more is partly, by the second fully, something else.
FRONT_GAP = (0.25, 0.5)
# A surface magnified by the first factor or less is drawn by the splat, from the second on by the surface point
# (bilinear splatting under-samples a magnified surface: blocky). Magnification is the Jacobian's largest singular
# value; starting the redraw at 1.25 instead cost 3.3 dB against a backward warp on shifted bumps
# (benchmarks/dynamics.py, stretch), and the redraw is what slows the renderer on strongly swaying pictures.
MAGNIFIED = (1.05, 1.25)
# A pixel splatted with alpha of this or more is no hole for the redraw (a hole by 1 - alpha, scaled to reach 0
# here): float32 coverage sums of fully covered pixels fall a hair short of 1, and a sixth of a swaying picture's
# pixels would otherwise each take Newton steps for a redraw weight of 1e-7.
COVERED = 0.99


def importance_metric(motion: MotionTexture, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """Paper's splatting weight: time-averaged flow magnitude, in reference pixels, times a temperature."""
    scale = METRIC_REFERENCE_SIZE / max(motion.height, motion.width)
    return motion.mean_magnitude() * (scale * temperature)


def importance_from_mask(mask: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """A user's importance mask [B, 1, H, W] in 0..1 (brighter = in front) as the splatting weight, in place of
    importance_metric (render_chunks checks the temperature)."""
    return mask * (temperature * IMPORTANCE_SCALE)


class Renderer(Protocol):
    name: str

    def render_chunk(self, image: torch.Tensor, fields: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        """image [B, 3, H, W] in 0..1; fields [n, B, 2, H, W]; metric [B, 1, H, W] -> frames [n, B, 3, H, W]."""


def push_pull_fill(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Dense estimate of `values` from the pixels where `weight` > 0 (a push-pull pyramid, Gortler et al.)."""
    levels = [(values * weight, weight)]
    while max(levels[-1][1].shape[-2:]) > 1 and bool((levels[-1][1] <= 0).any()):
        premult, w = levels[-1]
        kernel = tuple(2 if size > 1 else 1 for size in w.shape[-2:])
        levels.append((F.avg_pool2d(premult, kernel, ceil_mode=True), F.avg_pool2d(w, kernel, ceil_mode=True)))
    estimate = None
    for premult, w in reversed(levels):
        own = premult / w.clamp(min=1e-12)
        if estimate is None:
            estimate = own
            continue
        up = F.interpolate(estimate, size=premult.shape[-2:], mode="bilinear", align_corners=False)
        trust = (w / w.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12) * 4).clamp(max=1)
        estimate = own * trust + up * (1 - trust)
    return estimate


def coverage_alpha(coverage: torch.Tensor) -> torch.Tensor:
    """How far a splatted pixel is trusted: fully from a quarter pixel's worth of footprint on."""
    return (coverage * 4).clamp(0, 1)


def _ramp(value: torch.Tensor, full: float, none: float) -> torch.Tensor:
    """1 up to `full`, 0 from `none` on, linear between."""
    return ((none - value) / (none - full)).clamp(0, 1)


def _bilinear(planes: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """planes [N, C, H, W] at positions x, y [N, H, W] (border held): values [N, C, H, W] and their derivatives
    along x and y within the cell (0 beyond the border)."""
    n, c, h, w = planes.shape
    xc, yc = x.clamp(0, w - 1), y.clamp(0, h - 1)
    x0, y0 = xc.floor().clamp(max=max(w - 2, 0)), yc.floor().clamp(max=max(h - 2, 0))
    ax, ay = xc - x0, yc - y0
    inside_x, inside_y = ((x >= 0) & (x <= w - 1)).to(x.dtype), ((y >= 0) & (y <= h - 1)).to(y.dtype)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = planes.reshape(n, c, h * w)

    def corner(yy, xx):
        return flat.gather(2, (yy * w + xx).reshape(n, 1, -1).expand(n, c, -1)).reshape(n, c, *x.shape[1:])

    f00, f01, f10, f11 = corner(y0, x0), corner(y0, x1), corner(y1, x0), corner(y1, x1)
    ax, ay, inside_x, inside_y = (t.unsqueeze(1) for t in (ax, ay, inside_x, inside_y))
    top, bottom = f00 + (f01 - f00) * ax, f10 + (f11 - f10) * ax
    dx = ((f01 - f00) * (1 - ay) + (f11 - f10) * ay) * inside_x
    dy = (bottom - top) * inside_y
    return top + (bottom - top) * ay, dx, dy


def stretch_of(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """How much the map with Jacobian [[a, b], [c, d]] stretches a surface: the Jacobian's largest singular value
    (1 for a shift or a rotation, however large)."""
    squares = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return torch.sqrt(0.5 * (squares + torch.sqrt((squares * squares - 4 * det * det).clamp(min=0))))


def surface_take(picture: torch.Tensor, flow: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor, alpha: torch.Tensor,
                 depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """How much of each pixel q = (qx, qy) [M] (float64) comes from the picture's point s that the flow carries onto
    q (s + flow(s) = q, Newton steps from the first guess s = q - flow(q)), and that point's colour [3, M].

    A pixel takes the surface point where it is a hole (alpha [M] below COVERED: the fill would paint it with what
    lies behind) or magnified (splatting draws it blocky): by how much it is magnified (stretch_of, at s and at the
    first guess, MAGNIFIED), times how far s is believed. Belief is 0 where no point lands on q (the residual stays
    above SURFACE_RESIDUAL), where the map tears (stretch of SURFACE_STRETCH or more: neighbours moving apart, a
    disocclusion) or folds, and where something else is in front (the splatted depth [M] exceeds s's metric by
    FRONT_GAP). A point whose last Newton step moved it less than SURFACE_CONVERGED keeps what that step saw (its
    residual, stretch); only the others are looked up once more. picture [1, 4+, H, W] (colour, metric), flow
    [1, 2, H, W] on the same grid. The fused CPU kernel (kernels/cpu_render._redraw_row) does the same per pixel.
    """
    flow = flow.to(torch.float64)
    count = qx.numel()
    first = flow[0][:, qy.round().long(), qx.round().long()]  # q are pixel centres
    sx, sy = qx - first[0], qy - first[1]
    stretch, residual, det = (torch.zeros(count, dtype=torch.float64, device=flow.device) for _ in range(3))
    active = torch.arange(count, device=flow.device)
    first_stretch = wanted = None
    for step in range(SURFACE_STEPS):
        x, y = sx[active], sy[active]
        f, fdx, fdy = _bilinear(flow, x[None], y[None])
        a, b, c, d = 1 + fdx[0, 0], fdy[0, 0], fdx[0, 1], 1 + fdy[0, 1]  # the map's Jacobian at s
        step_stretch = stretch_of(a, b, c, d)
        if first_stretch is None:
            first_stretch = step_stretch
            wanted = torch.nonzero((alpha < COVERED) | (step_stretch > MAGNIFIED[0])).flatten()  # the rest take 0
            active = wanted
            x, y, f, a, b, c, d, step_stretch = (t[..., wanted] for t in (x, y, f, a, b, c, d, step_stretch))
        rx, ry = x + f[0, 0] - qx[active], y + f[0, 1] - qy[active]
        step_det = a * d - b * c
        ok = step_det > 1e-6  # a folded point takes no step and is not believed (det stays 0)
        safe = torch.where(ok, step_det, torch.ones_like(step_det))
        ux, uy = torch.where(ok, (d * rx - b * ry) / safe, 0), torch.where(ok, (a * ry - c * rx) / safe, 0)
        sx[active], sy[active] = x - ux, y - uy
        done = ok & (ux * ux + uy * uy < SURFACE_CONVERGED ** 2)  # smooth flows converge in a step or two
        finished = active[done]
        stretch[finished], residual[finished], det[finished] = step_stretch[done], torch.hypot(rx, ry)[done], \
            step_det[done]
        active = active[ok & ~done]
        if not active.numel():
            break
    if active.numel():
        x, y = sx[active], sy[active]
        f, fdx, fdy = _bilinear(flow, x[None], y[None])
        a, b, c, d = 1 + fdx[0, 0], fdy[0, 0], fdx[0, 1], 1 + fdy[0, 1]
        stretch[active], det[active] = stretch_of(a, b, c, d), a * d - b * c
        residual[active] = torch.hypot(x + f[0, 0] - qx[active], y + f[0, 1] - qy[active])
    take = torch.zeros(count, dtype=torch.float64, device=flow.device)
    colour = torch.zeros(3, count, dtype=torch.float64, device=flow.device)
    if wanted is None or not wanted.numel():
        return take, colour
    features, _, _ = _bilinear(picture[:, :4].to(torch.float64), sx[wanted][None], sy[wanted][None])
    stretch, first_stretch = stretch[wanted], first_stretch[wanted]
    belief = _ramp(residual[wanted], *SURFACE_RESIDUAL) * _ramp(stretch, *SURFACE_STRETCH) * (det[wanted] > 1e-6)
    front = _ramp(depth[wanted] - features[0, 3], *FRONT_GAP)
    magnified = 1 - _ramp(torch.minimum(stretch, first_stretch), *MAGNIFIED)
    take[wanted] = belief * front * torch.maximum(_ramp(alpha[wanted], 0.0, COVERED), magnified)
    colour[:, wanted] = features[0, :3]
    return take, colour


def cell_stretch_bound(flow: torch.Tensor) -> torch.Tensor:
    """[N, H, W]: the largest stretch_of anywhere in the bilinear cell whose top-left corner is each pixel (inf for
    the cells on the grid's border, where _bilinear holds the border). Within a cell the Jacobian is affine in the
    position (dfx/dx and dfy/dx blend the top and bottom edges, dfx/dy and dfy/dy the left and right ones), and the
    largest singular value is convex, so its largest value is at one of the cell's four corners."""
    n, _, h, w = flow.shape
    bound = torch.full((n, h, w), math.inf, device=flow.device, dtype=flow.dtype)
    if h < 4 or w < 4:
        return bound
    f00, f01, f10, f11 = flow[..., :-1, :-1], flow[..., :-1, 1:], flow[..., 1:, :-1], flow[..., 1:, 1:]
    along_x = (f01 - f00, f11 - f10)  # top and bottom edges: (d/dx of fx, fy)
    along_y = (f10 - f00, f11 - f01)  # left and right edges: (d/dy of fx, fy)
    most = None
    for ex in along_x:
        for ey in along_y:
            corner = stretch_of(1 + ex[:, 0], ey[:, 0], ex[:, 1], 1 + ey[:, 1])
            most = corner if most is None else torch.maximum(most, corner)
    bound[:, 1:h - 2, 1:w - 2] = most[:, 1:h - 2, 1:w - 2]
    return bound


def draw_stretched_surface(estimate: torch.Tensor, alpha: torch.Tensor, coverage: torch.Tensor, depth: torch.Tensor,
                           picture: torch.Tensor, flow: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """Redraw what splatting draws badly on a stretched surface: its holes (gaps between the spread-apart pixels,
    which the fill would paint with what lies behind) and its magnified parts (blocky), from the surface point
    itself (surface_take). Only holes and pixels whose first guess s = q - flow(q) is magnified by MAGNIFIED[0]
    or more can change, and only they take Newton steps; the rest are returned as they are.
    estimate [N, 3, H, W] (the splat with its holes filled), alpha/coverage/depth [N, 1, H, W]; picture [N or 1, 4+,
    H, W] (colour, metric) and flow [N, 2, H, W] on the same grid, padded by `margin` pixels that are cut away
    (and so not redrawn)."""
    if not bool(flow.any()):
        return estimate
    n, _, h, w = flow.shape
    # Candidates: holes, and pixels whose first guess lies in a cell that may be magnified that much.
    qy, qx = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device), indexing="ij")
    sx = (qx - flow[:, 0]).clamp(0, w - 1).floor().clamp(max=max(w - 2, 0)).long()
    sy = (qy - flow[:, 1]).clamp(0, h - 1).floor().clamp(max=max(h - 2, 0)).long()
    bound = cell_stretch_bound(flow).flatten(1).gather(1, (sy * w + sx).flatten(1)).view(n, h, w)
    candidates = (alpha[:, 0] < COVERED) | (bound > MAGNIFIED[0])
    if margin:
        inner = torch.zeros_like(candidates)
        inner[:, margin:h - margin, margin:w - margin] = True
        candidates &= inner
    if not bool(candidates.any()):
        return estimate
    out = estimate.clone()
    for i in torch.nonzero(candidates.flatten(1).any(dim=1)).flatten().tolist():
        where = torch.nonzero(candidates[i].flatten()).flatten()
        px, py = (where % w).to(torch.float64), (where // w).to(torch.float64)
        take, colour = surface_take(picture[min(i, picture.shape[0] - 1)][None], flow[i:i + 1], px, py,
                                    alpha[i, 0].flatten()[where].to(torch.float64),
                                    depth[i, 0].flatten()[where].to(torch.float64))
        flat = out[i].flatten(1)
        flat[:, where] = (flat[:, where] + (colour - flat[:, where]) * take).to(out.dtype)
    return out


def fill_holes(values: torch.Tensor, coverage: torch.Tensor, depth: torch.Tensor | None = None,
               background_preference: float = BACKGROUND_PREFERENCE, trust: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Fill uncovered (and barely covered) pixels from their surroundings, preferring what lies behind.

    depth: the splatted importance metric (larger = in front); holes open where something in front moved
    away, so the fill weighs the surrounding pixels by exp(-preference * depth / max depth) and takes its
    colour mostly from the background rather than smearing the foreground over it.
    trust (0..1, optional) lowers how far covered pixels are believed, both for themselves and as fill sources.
    Pixels with full trust (coverage_alpha == 1) are returned unchanged.
    """
    alpha = coverage_alpha(coverage) if trust is None else coverage_alpha(coverage) * trust
    if bool((alpha >= 1).all()):
        return values
    weight = alpha
    if depth is not None:
        scale = depth.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-6)
        weight = alpha * torch.exp(-background_preference * (depth / scale).clamp(0, 1))
    estimate = push_pull_fill(values, weight)
    return torch.where(alpha >= 1, values, values * alpha + estimate * (1 - alpha))


def footprint_variance(fields: torch.Tensor) -> torch.Tensor:
    """Per-source blur of the bilinear footprint, [N, 2, H, W]: d(1 - d) for the fractional offset d per axis."""
    frac = fields - torch.floor(fields)
    return frac * (1 - frac)


def restore_sharpness(frames: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Undo, to first order, the blur bilinear splatting adds: f ~ g - 1/2 (vx g_xx + vy g_yy).

    The blur varies with each pixel's fractional offset, so uncorrected loops shimmer in sharpness and the
    crisp picture at frame 0 pops; where the variance is 0 the pixels are returned untouched.
    """
    padded = F.pad(frames, (1, 1, 1, 1), mode="replicate")
    centre = padded[..., 1:-1, 1:-1]
    gxx = padded[..., 1:-1, 2:] - 2 * centre + padded[..., 1:-1, :-2]
    gyy = padded[..., 2:, 1:-1] - 2 * centre + padded[..., :-2, 1:-1]
    sharpened = (frames - 0.5 * (variance[:, 0:1] * gxx + variance[:, 1:2] * gyy)).clamp(0, 1)
    return torch.where((variance > 0).any(dim=1, keepdim=True), sharpened, frames)


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(max(1, round(h / factor)), max(1, round(w / factor))), mode="area")


class SplatRenderer:
    """Training-free renderer: softmax splatting of the picture, optionally over a pyramid of it.

    With levels > 1 the picture is also splatted at half, quarter... resolution (a feature pyramid of the
    picture itself) and where the full-resolution splat leaves cracks or holes the coarser splats fill them,
    coarse to fine. What no level covers is filled from its surroundings with a preference for the background.
    `sharpen` restores the bilinear footprint's blur to first order (steadier crispness over a loop).
    Defaults (one level, no sharpening) scored best in benchmarks/render_fidelity.py on real clips.
    backend: "auto" runs those defaults as one fused pipeline per frame on CPU (kernels/cpu_render.py, when
    numba is installed) and the Triton splatting kernel on CUDA; "torch" forces the plain-torch path (the
    reference the fused one is tested against); "numba"/"triton" force that kernel (see softmax_splat).
    """

    name = "softmax splat (training-free)"

    def __init__(self, levels: int = 1, sharpen: bool = False, still_below_px: float = STILL_BELOW_PX,
                 background_preference: float = BACKGROUND_PREFERENCE, backend: str = "auto"):
        self.levels = checks.integer("levels", levels, minimum=1)
        self.sharpen = sharpen
        self.still_below_px = still_below_px
        self.background_preference = background_preference
        self.backend = checks.choice("backend", backend, BACKENDS)

    def fused(self, image: torch.Tensor, fields: torch.Tensor) -> bool:
        """Whether render_chunk runs the fused CPU pipeline for these tensors."""
        needs_grad = torch.is_grad_enabled() and (image.requires_grad or fields.requires_grad)
        return (self.backend in ("auto", "numba") and self.levels == 1 and not self.sharpen and not needs_grad
                and image.device.type == "cpu" and image.dtype in (torch.float32, torch.float64)
                and cpu_kernel.available())

    def render_chunk(self, image: torch.Tensor, fields: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        n, b, _, h, w = fields.shape
        flow = fields.reshape(n * b, 2, h, w)
        if self.fused(image, fields):
            frames = fallback.attempt("numba renderer", lambda: self._render_fused(image, flow, metric),
                                      forced=self.backend != "auto")
            if frames is not None:
                return frames.permute(1, 0, 4, 2, 3)
        # Invisible sub-pixel drift would still resample (soften) the pixels; snapping it to zero keeps still
        # regions bit-identical to the picture in every frame, so nothing shimmers and frame 0 does not pop.
        flow = flow.masked_fill(flow.pow(2).sum(1, keepdim=True) < self.still_below_px ** 2, 0.0)
        # One picture is shared by all frames (the operator broadcasts it); several are laid out frame-major.
        pictures, metric = (image, metric) if b == 1 else (
            t.unsqueeze(0).expand(n, *t.shape).reshape(n * b, *t.shape[1:]) for t in (image, metric))
        # Content that moves in from outside the frame is unknown. Extend the picture (and its motion) by
        # replicating its border, and splat an "inside" channel along: where replicated content lands it is
        # trusted only BORDER_TRUST and blended with the fill from real pixels (better than either alone on
        # real clips in benchmarks/render_fidelity.py).
        margin = min(int(flow.abs().amax().ceil()) + 1, max(h, w)) if flow.numel() else 0
        features = torch.cat([pictures, metric], dim=1)
        if margin:
            pad = (margin, margin, margin, margin)
            flow, metric, features = (F.pad(t, pad, mode="replicate") for t in (flow, metric, features))
            inside = F.pad(torch.ones_like(pictures[:, :1]), pad)
            features = torch.cat([features, inside], dim=1)

        estimate = None
        for level in reversed(range(self.levels)):
            factor = 2 ** level
            if level and min(h, w) // factor < 4:
                continue
            lv_flow = downsample(flow, factor) / factor if level else flow
            lv_features = downsample(features, factor) if level else features
            sharpen = level == 0 and self.sharpen
            if sharpen:
                lv_features = torch.cat([lv_features.expand(lv_flow.shape[0], -1, -1, -1),
                                         footprint_variance(lv_flow)], dim=1)
            splatted, coverage = softmax_splat(lv_features, lv_flow, lv_features[:, 3:4], backend=self.backend)
            colour, depth = splatted[:, :3], splatted[:, 3:4]
            trust = BORDER_TRUST + (1 - BORDER_TRUST) * splatted[:, 4:5] if margin else None
            if sharpen:
                colour = restore_sharpness(colour, splatted[:, -2:])
            alpha = coverage_alpha(coverage) * (1 if trust is None else trust)
            if estimate is None:
                estimate = fill_holes(colour, coverage, depth, self.background_preference, trust)
            else:
                up = F.interpolate(estimate, size=colour.shape[-2:], mode="bilinear", align_corners=False)
                estimate = torch.where(alpha >= 1, colour, colour * alpha + up * (1 - alpha))
            if level == 0:
                estimate = draw_stretched_surface(estimate, alpha, coverage, depth, lv_features, lv_flow, margin)
        if margin:
            estimate = estimate[..., margin:margin + h, margin:margin + w]
        return estimate.reshape(n, b, 3, h, w)

    def _render_fused(self, image: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        """The default pipeline above in one kernel; frames [B, n, H, W, 3]."""
        h, w = flow.shape[-2:]
        margin = min(math.ceil(cpu_kernel.moving_extent(flow, self.still_below_px)) + 1, max(h, w))
        pad = (margin, margin, margin, margin)
        features = F.pad(torch.cat([image, metric.to(image.dtype)], dim=1), pad, mode="replicate")
        features = torch.cat([features, F.pad(torch.ones_like(image[:, :1]), pad)], dim=1)
        z = features[:, 3].contiguous()
        surface = (SURFACE_STEPS, *SURFACE_RESIDUAL, *SURFACE_STRETCH, *FRONT_GAP, *MAGNIFIED, COVERED,
                   SURFACE_CONVERGED)
        return cpu_render.render_frames(features, z, shifted_exp(z), flow, margin, self.still_below_px,
                                        BORDER_TRUST, self.background_preference, surface)


def render_chunks(renderer: Renderer, image: torch.Tensor, motion: MotionTexture, *,
                  temperature: float = DEFAULT_TEMPERATURE, metric: torch.Tensor | None = None,
                  progress: Progress | None = None, out_device: torch.device | str = "cpu"
                  ) -> Iterator[tuple[int, torch.Tensor]]:
    """Render `motion` from `image` [B, 3, H, W] chunk by chunk: yields (first frame, frames [B, n, H, W, 3]).

    For consumers that write frames away as they come (a video encoder): memory stays one chunk, whatever
    the frame count. `metric` overrides the depth proxy ([B, 1, H, W], larger = in front). Progress is
    reported after each chunk as progress(frames done, total); an exception raised by it stops rendering.
    """
    b, c, h, w = image.shape
    if c != 3:
        raise ValueError(f"image must have 3 channels, got {c}")
    temperature = TEMPERATURE.check("temperature", temperature)
    if (motion.batch, motion.height, motion.width) != (b, h, w):
        raise ValueError(f"motion texture is {motion.batch}x{motion.height}x{motion.width} (batch x H x W) "
                         f"but the picture is {b}x{h}x{w}; resize the spectral volume to the picture first")
    device = image.device
    if metric is None:
        metric = importance_metric(motion, temperature)
    metric = metric.to(device, image.dtype)
    total = motion.frame_count
    step = max(1, min(CHUNK_FRAMES, CHUNK_PIXELS // (b * h * w)))
    # Even chunks: the CPU kernels run a chunk's frames in parallel, and on the usual even thread counts no thread
    # then idles at a chunk's end. Not the machine's own thread count: a chunk's margin and fill depth shape its
    # hole filling, so the frames must not depend on the machine.
    if step > 2:
        step -= step % 2
    for start, fields in motion.chunks(step):
        frames = renderer.render_chunk(image, fields.to(device, image.dtype), metric)
        frames = frames.permute(1, 0, 3, 4, 2).to(out_device)
        if progress is not None:
            progress(start + frames.shape[1], total)
        yield start, frames


def render_frames(renderer: Renderer, image: torch.Tensor, motion: MotionTexture, *,
                  temperature: float = DEFAULT_TEMPERATURE, metric: torch.Tensor | None = None,
                  progress: Progress | None = None, out_device: torch.device | str = "cpu",
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """Render every frame of `motion` from `image` [B, 3, H, W]; returns [B, N, H, W, 3] on `out_device`.

    `out` (optional, [B, N, H, W, 3]) receives the frames instead of a new tensor. See render_chunks for
    `metric` and `progress` (cancel by raising from it).
    """
    b, _, h, w = image.shape
    shape = (b, motion.frame_count, h, w, 3)
    if out is None:
        out = torch.empty(shape, device=out_device, dtype=image.dtype)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out: expected a tensor of shape {shape}, got {tuple(out.shape)}")
    for start, frames in render_chunks(renderer, image, motion, temperature=temperature, metric=metric,
                                       progress=progress, out_device=out.device):
        out[:, start:start + frames.shape[1]] = frames
    return out


# Scratch of one chunk per pixel: the operator's (about 150 B, see CHUNK_PIXELS) rounded up for the fill.
SCRATCH_PER_PIXEL = 200
FLOAT32_BYTES = 4


def render_bytes(batch: int, frames: int, height: int, width: int, bins: int) -> tuple[int, int]:
    """(bytes of every frame, float32 RGB; scratch bytes of rendering chunk by chunk) of render_frames: one
    chunk's splatting plus the volume resized to the picture and the motion texture's real coefficients."""
    chunk = max(1, min(CHUNK_FRAMES, CHUNK_PIXELS // (batch * height * width)))
    output = batch * frames * height * width * 3 * FLOAT32_BYTES
    scratch = chunk * batch * height * width * SCRATCH_PER_PIXEL + 2 * volume_bytes(batch, bins, height, width)
    return output, scratch


def check_render_fits(what: str, motion: MotionTexture, height: int, width: int, device: torch.device,
                      out_device: torch.device, *, hold_frames: bool, budget: memory.Budget = memory.free_bytes,
                      advice: str = "") -> None:
    """Refuse (memory.RequestTooLarge) a render of `motion` at height x width that does not fit: every frame on
    `out_device` and a chunk's scratch on `device` (hold_frames, render_frames), or the scratch alone
    (render_chunks). `advice` is added where holding the frames is what does not fit."""
    output, scratch = render_bytes(motion.batch, motion.frame_count, height, width, motion.volume.num_bins)
    if not hold_frames:
        memory.check_fits(what + " chunk by chunk", scratch, device, budget)
    elif torch.device(device) == torch.device(out_device):
        memory.check_fits(what, output + scratch, device, budget, advice)
    else:
        memory.check_fits(what, output, out_device, budget, advice)
        memory.check_fits(what, scratch, device, budget)
