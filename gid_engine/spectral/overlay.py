"""A picture of a spectral volume's motion: amplitude heat map over the (dimmed) picture, plus direction glyphs."""
from __future__ import annotations

import math

import torch

from .. import checks, imageops
from .volume import SpectralVolume

# Dark -> purple -> red -> orange -> pale yellow: still areas stay dark, strong motion glows.
HEAT_PALETTE = (
    (0.02, 0.02, 0.08),
    (0.35, 0.06, 0.50),
    (0.80, 0.15, 0.30),
    (0.98, 0.55, 0.10),
    (0.99, 0.98, 0.65),
)
GLYPH_COLOR = (1.0, 1.0, 1.0)
# Cells with less than this share of the strongest cell's sway get no glyph (their direction is noise).
GLYPH_MIN_SHARE = 0.08


def motion_amplitude(volume: SpectralVolume) -> torch.Tensor:
    """Upper bound of each pixel's displacement from its rest position, in pixels: [B, H, W]."""
    return volume.peak_displacement()


def sway_covariance(volume: SpectralVolume) -> torch.Tensor:
    """Time-averaged covariance of each pixel's oscillation (DC left out): [B, 3, H, W] as (xx, yy, xy)."""
    coeffs = volume.coeffs[:, 1:]
    w2 = (volume.synthesis_weights()[1:] ** 2 / 2).view(1, -1, 1, 1)
    cx, cy = coeffs[:, :, 0], coeffs[:, :, 1]
    xx = (w2 * cx.abs().float() ** 2).sum(dim=1)
    yy = (w2 * cy.abs().float() ** 2).sum(dim=1)
    xy = (w2 * (cx * cy.conj()).real.float()).sum(dim=1)
    return torch.stack([xx, yy, xy], dim=1)


def heat_colors(values: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] of shape [B, H, W] -> RGB [B, 3, H, W] along HEAT_PALETTE."""
    palette = torch.tensor(HEAT_PALETTE, device=values.device, dtype=torch.float32)  # [S, 3]
    position = values.clamp(0, 1) * (len(HEAT_PALETTE) - 1)
    low = position.floor().long().clamp(max=len(HEAT_PALETTE) - 2)
    frac = (position - low).unsqueeze(-1)
    rgb = palette[low] * (1 - frac) + palette[low + 1] * frac  # [B, H, W, 3]
    return rgb.permute(0, 3, 1, 2)


def _draw_glyphs(canvas: torch.Tensor, covariance: torch.Tensor, cell: int) -> None:
    """Draws, per grid cell, a line along the cell's main sway axis, its length following the sway."""
    b, _, h, w = canvas.shape
    pooled = torch.nn.functional.avg_pool2d(covariance, cell, ceil_mode=True)  # [B, 3, gh, gw]
    xx, yy, xy = pooled.unbind(dim=1)
    # Largest eigenvalue and its direction of the 2x2 covariance [[xx, xy], [xy, yy]].
    half_diff = (xx - yy) / 2
    major = (xx + yy) / 2 + torch.sqrt(half_diff ** 2 + xy ** 2)
    angle = 0.5 * torch.atan2(2 * xy, xx - yy)
    sway = major.clamp(min=0).sqrt()
    strongest = sway.flatten(1).amax(dim=1).clamp(min=1e-12).view(b, 1, 1)
    share = sway / strongest
    gh, gw = share.shape[1:]
    centre_y = (torch.arange(gh, device=canvas.device, dtype=torch.float32) + 0.5) * cell
    centre_x = (torch.arange(gw, device=canvas.device, dtype=torch.float32) + 0.5) * cell
    half_length = 0.45 * cell * share  # [B, gh, gw]
    steps = torch.linspace(-1, 1, 2 * cell + 1, device=canvas.device).view(1, 1, 1, -1)
    px = centre_x.view(1, 1, gw, 1) + steps * (half_length * torch.cos(angle)).unsqueeze(-1)
    py = centre_y.view(1, gh, 1, 1) + steps * (half_length * torch.sin(angle)).unsqueeze(-1)
    keep = (share >= GLYPH_MIN_SHARE).unsqueeze(-1).expand_as(px)
    batch = torch.arange(b, device=canvas.device).view(b, 1, 1, 1).expand_as(px)
    ix, iy = px.round().long(), py.round().long()
    keep = keep & (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    color = torch.tensor(GLYPH_COLOR, device=canvas.device, dtype=canvas.dtype)
    for channel in range(3):
        canvas[batch[keep], channel, iy[keep], ix[keep]] = color[channel]


def motion_overlay(volume: SpectralVolume, picture: torch.Tensor | None = None, *, glyphs: bool = True,
                   glyph_cell: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Heat map of motion amplitude blended over the picture, optionally with direction glyphs.

    picture: [B, 3, H, W] in 0..1 (or None: the map alone, at the volume's size). The volume is resampled to the
    picture's size. Returns (overlay [B, 3, H, W] in 0..1, peak amplitude per picture in pixels [B]).
    """
    if picture is not None:
        if picture.ndim != 4 or picture.shape[1] != 3:
            raise ValueError(f"picture: expected [B, 3, H, W], got {tuple(picture.shape)}")
        if picture.shape[0] != volume.batch:
            raise ValueError(f"picture: a batch of {picture.shape[0]} for a spectral volume of {volume.batch}")
        volume = volume.resize(picture.shape[2], picture.shape[3])
    amplitude = checks.finite_tensor("spectral_volume", motion_amplitude(volume))
    peak = amplitude.flatten(1).amax(dim=1)
    heat = heat_colors(amplitude / peak.clamp(min=1e-6).view(-1, 1, 1))
    if picture is None:
        overlay = heat
    else:
        luminance = imageops.luminance(picture.float().to(heat.device))
        # The picture stays readable underneath; the heat map carries the colour.
        overlay = 0.45 * luminance + 0.55 * heat
    if glyphs:
        cell = glyph_cell or max(8, int(math.ceil(max(overlay.shape[2:]) / 24)))
        _draw_glyphs(overlay, sway_covariance(volume), cell)
    return overlay.clamp(0, 1), peak


STILL_TINT = (0.85, 0.25, 0.25)


def mobility_map(volume: SpectralVolume) -> torch.Tensor:
    """How much each pixel moves relative to the picture's strongly moving parts, [B, 1, H, W] in 0..1: the
    time-RMS displacement over its 99th percentile (sources without a mobility estimate of their own)."""
    rms = volume.rms_displacement().float()
    reference = torch.quantile(rms.flatten(1)[:, :: max(1, rms[0].numel() // 65536)], 0.99, dim=1)
    return (rms / reference.clamp(min=1e-6).view(-1, 1, 1)).clamp(0, 1).unsqueeze(1)


def mobility_overlay(mobility: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
    """The picture in its colours where it moves, grey with a red tint where it stays still: [B, 3, H, W].
    mobility [B, 1, H, W] in 0..1, picture [B, 3, H, W] in 0..1 (same size)."""
    grey = imageops.luminance(picture.float())
    tint = torch.tensor(STILL_TINT, device=picture.device).view(1, 3, 1, 1)
    still = 0.55 * grey + 0.45 * tint * grey.clamp(min=0.25)
    return (mobility * picture.float() + (1 - mobility) * still).clamp(0, 1)
