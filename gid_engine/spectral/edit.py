"""Band-by-band edits of any spectral volume, described by one JSON object.

The edit state is a single JSON object (a string in the node's widget, shared by the browser editor and
API-format runs). Every key is optional; `{}` is the identity, and so is any value equal to its default.

    {
      "gains":             [K numbers 0..1000]  amplitude gain per frequency bin (bin k is k * fps / period Hz;
                                            K = the volume's bin count, 16 for GID). gains[0] scales the
                                            0 Hz term, the static offset of each pixel. Default all 1.
      "magnify":           0..1000           global amplitude factor: every displacement is scaled by it
                                            (paper: motion magnification / minification). Default 1.
      "restrict_deg":      -360..360 or null  keep motion along this axis only (degrees, image coordinates:
                                            0 = horizontal, 90 = vertical). Default null (free).
      "restrict_strength": 0..1              how much of the motion across that axis is removed. Default 1.
      "rotate_deg":        -360..360         rotate every motion vector (applied after restrict). Default 0.
      "damp_above_hz":     > 0 and <= 1000, or null  bins above this frequency are damped by (cutoff / f) ** power.
      "damp_power":        1e-6..100         steepness of that damping. Default 2.
      "reseed":            integer 0..2**64-1 or null  give every band new, spatially smooth random phases from
                                            this seed (same amplitudes, a different but equally plausible motion).
      "reseed_amount":     0..1              0 keeps the phases, 1 fully new ones. Default 1.
      "freeze":            bool              stop all motion (inside the mask, when one is given). Default false.
      "feather_px":        0..4096           soften the mask's edge over about this many pixels. Default 0.
      "invert_mask":       bool              apply the edit outside the mask instead (needs a mask). Default false.
      "ui":                anything          the browser editor's own state; ignored here.
    }

The ranges keep every result representable: a gain of 1000 on top of a magnify of 1000 scales motion a
millionfold (already far past any picture), and angles beyond a full turn only repeat themselves. A value
outside its range is an error naming the key, never clamped.

Order: gains and damping per band, then re-seeding, then direction, then magnify; `freeze` replaces the
result with no motion. With a mask (1 = edit applies), the edited and original coefficients are blended by
the (feathered) mask: exactly the edit where it is 1, exactly the original where it is 0.

Frame 0 stays anchored: band-dependent changes (gains, damping, re-seeding) would move each pixel's
position at t = 0, so the 0 Hz term is corrected to keep it where the band-independent part of the edit
(direction, magnify) puts it; gains[0] then scales that term. With gains of 1 and nothing else, the
volume is returned bit for bit.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from .. import checks, imageops
from .volume import SpectralVolume, at_rest_dc, coherence_length

# Allowed ranges (see the module docstring).
MAX_GAIN = 1000.0
MAX_DEGREES = 360.0
MAX_DAMP_HZ = 1000.0
MAX_DAMP_POWER = 100.0
MAX_FEATHER_PX = 4096.0
MAX_SEED = 2 ** 64 - 1  # what torch.Generator.manual_seed takes

KNOWN_KEYS = {"gains", "magnify", "restrict_deg", "restrict_strength", "rotate_deg", "damp_above_hz",
              "damp_power", "reseed", "reseed_amount", "freeze", "feather_px", "invert_mask", "ui"}


@dataclasses.dataclass(frozen=True)
class SpectrumEdit:
    gains: tuple[float, ...] | None = None
    magnify: float = 1.0
    restrict_deg: float | None = None
    restrict_strength: float = 1.0
    rotate_deg: float = 0.0
    damp_above_hz: float | None = None
    damp_power: float = 2.0
    reseed: int | None = None
    reseed_amount: float = 1.0
    freeze: bool = False
    feather_px: float = 0.0
    invert_mask: bool = False

    @classmethod
    def parse(cls, text: str | dict | None) -> "SpectrumEdit":
        """Validate the JSON edit state; every problem names its key and what was expected."""
        if text is None or (isinstance(text, str) and not text.strip()):
            return cls()
        data = checks.json_value("edit", text)
        if not isinstance(data, dict):
            raise ValueError(f"edit: expected a JSON object like {{\"magnify\": 2}}, got {type(data).__name__}")
        unknown = sorted(set(data) - KNOWN_KEYS)
        if unknown:
            raise ValueError(f"edit: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(KNOWN_KEYS))}")
        gains = data.get("gains")
        if gains is not None:
            if not isinstance(gains, list) or not gains:
                raise ValueError(f"edit: 'gains' must be a list of numbers, one per band, got {gains!r}")
            gains = tuple(checks.number(f"edit: 'gains'[{i}]", g, minimum=0.0, maximum=MAX_GAIN)
                          for i, g in enumerate(gains))

        def number(key: str, default: float | None, **bounds) -> float | None:
            value = data.get(key, default)
            return None if value is None else checks.number(f"edit: {key!r}", value, **bounds)

        seed = data.get("reseed")
        return cls(
            gains=gains,
            magnify=number("magnify", 1.0, minimum=0.0, maximum=MAX_GAIN),
            restrict_deg=number("restrict_deg", None, minimum=-MAX_DEGREES, maximum=MAX_DEGREES),
            restrict_strength=number("restrict_strength", 1.0, minimum=0.0, maximum=1.0),
            rotate_deg=number("rotate_deg", 0.0, minimum=-MAX_DEGREES, maximum=MAX_DEGREES),
            damp_above_hz=number("damp_above_hz", None, above=0.0, maximum=MAX_DAMP_HZ),
            damp_power=number("damp_power", 2.0, minimum=1e-6, maximum=MAX_DAMP_POWER),
            reseed=None if seed is None else checks.integer("edit: 'reseed'", seed, minimum=0, maximum=MAX_SEED),
            reseed_amount=number("reseed_amount", 1.0, minimum=0.0, maximum=1.0),
            freeze=_flag(data, "freeze"),
            feather_px=number("feather_px", 0.0, minimum=0.0, maximum=MAX_FEATHER_PX),
            invert_mask=_flag(data, "invert_mask"),
        )

    def band_gains(self, volume: SpectralVolume) -> torch.Tensor | None:
        """Real gain per bin [K] from gains and damping, or None when both are the identity."""
        k = volume.num_bins
        if self.gains is not None and len(self.gains) != k:
            raise ValueError(f"edit: 'gains' has {len(self.gains)} values but the spectral volume has {k} bands "
                             f"({volume.frequencies_hz[0]:.1f} to {volume.frequencies_hz[-1]:.1f} Hz)")
        gains = torch.tensor(self.gains if self.gains is not None else [1.0] * k, dtype=torch.float64)
        if self.damp_above_hz is not None:
            hz = torch.tensor(volume.frequencies_hz, dtype=torch.float64)
            gains = gains * (self.damp_above_hz / hz.clamp(min=self.damp_above_hz)) ** self.damp_power
        return None if bool((gains == 1).all()) else gains

    def direction_matrix(self) -> torch.Tensor | None:
        """2x2 real matrix acting on (x, y) motion, or None for the identity."""
        if self.restrict_deg is None and self.rotate_deg == 0:
            return None
        matrix = torch.eye(2, dtype=torch.float64)
        if self.restrict_deg is not None:
            a = math.radians(self.restrict_deg)
            axis = torch.tensor([math.cos(a), math.sin(a)], dtype=torch.float64)
            matrix = matrix - self.restrict_strength * (matrix - torch.outer(axis, axis))
        if self.rotate_deg:
            r = math.radians(self.rotate_deg)
            rotation = torch.tensor([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]], dtype=torch.float64)
            matrix = rotation @ matrix
        return matrix


def apply_edit(volume: SpectralVolume, edit: SpectrumEdit | str | dict | None,
               mask: torch.Tensor | None = None) -> SpectralVolume:
    """Edited copy of `volume`; mask [B or 1, 1, H, W] on the volume's grid (1 = the edit applies)."""
    edit = edit if isinstance(edit, SpectrumEdit) else SpectrumEdit.parse(edit)
    coeffs = volume.coeffs
    if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] not in (1, volume.batch)
                             or tuple(mask.shape[-2:]) != (volume.height, volume.width)):
        raise ValueError(f"mask: expected [1 or {volume.batch}, 1, {volume.height}, {volume.width}], "
                         f"got {tuple(mask.shape)}")
    if edit.invert_mask and mask is None:
        raise ValueError("edit: 'invert_mask' is true but no mask is connected; connect one or set it to false")
    edited = _freeze(coeffs) if edit.freeze else _edit_everywhere(volume, edit)
    if edited is coeffs:
        return volume
    # In-range factors can still overflow a volume that was huge to begin with: say so, never pass inf on.
    checks.finite_tensor("edit: the edited spectral volume (lower 'gains' or 'magnify')", edited)
    if mask is not None:
        weight = feathered(mask.to(coeffs.device, torch.float32), edit.feather_px)
        if edit.invert_mask:
            weight = 1 - weight
        weight = weight.unsqueeze(1)  # [B, 1, 1, H, W] over bins and axes
        blended = coeffs + weight * (edited - coeffs)
        edited = torch.where(weight == 0, coeffs, torch.where(weight == 1, edited, blended))
    return volume.replace(coeffs=edited)


def feathered(mask: torch.Tensor, feather_px: float) -> torch.Tensor:
    """Mask with a soft edge about `feather_px` wide that still reaches exactly 0 and exactly 1."""
    if feather_px <= 0:
        return mask.clamp(0, 1)
    # A blurred step passes 0.1 .. 0.9 over 2.56 sigma; the smoothstep pins both ends exactly.
    return imageops.smoothstep(0.1, 0.9, imageops.gaussian_blur(mask.clamp(0, 1), feather_px / 2.56))


def _freeze(coeffs: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(coeffs)


def _edit_everywhere(volume: SpectralVolume, edit: SpectrumEdit) -> torch.Tensor:
    """Apply the edit to every pixel; returns `volume.coeffs` itself when nothing changes."""
    original = volume.coeffs
    coeffs = original
    gains = edit.band_gains(volume)
    if gains is not None:
        coeffs = coeffs * gains.to(coeffs.device, torch.float32).view(1, -1, 1, 1, 1)
    if edit.reseed is not None and edit.reseed_amount > 0:
        coeffs = coeffs * _phase_shifts(volume, edit.reseed, edit.reseed_amount).to(coeffs.device)
    band_changed = coeffs is not original
    matrix = edit.direction_matrix()
    if matrix is not None:
        coeffs = _apply_matrix(coeffs, matrix)
    if edit.magnify != 1:
        coeffs = coeffs * edit.magnify
    if band_changed:
        # Keep frame 0 where the band-independent part of the edit puts it (see the module docstring).
        target = original
        if matrix is not None:
            target = _apply_matrix(target, matrix)
        if edit.magnify != 1:
            target = target * edit.magnify
        dc = at_rest_dc(coeffs, reference=target)
        coeffs = torch.cat([(dc * (gains[0].item() if gains is not None else 1.0)).unsqueeze(1), coeffs[:, 1:]], dim=1)
    return coeffs


def _apply_matrix(coeffs: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    m = matrix.tolist()
    x, y = coeffs[:, :, 0], coeffs[:, :, 1]
    return torch.stack([m[0][0] * x + m[0][1] * y, m[1][0] * x + m[1][1] * y], dim=2)


def _phase_shifts(volume: SpectralVolume, seed: int, amount: float) -> torch.Tensor:
    """Unit complex factors [B, K, 1, H, W]: a per-band random offset plus a smooth random phase field.

    The same shift multiplies x and y, so each pixel keeps its path's shape and only its timing changes.
    The field is smooth (no phase singularities), so neighbours stay in step. DC is left alone.
    Drawn on the CPU from `seed`, so every device gets the same phases.
    """
    b, k, _, h, w = volume.coeffs.shape
    generator = torch.Generator().manual_seed(int(seed))
    side = max(h, w)
    phases = torch.zeros(b, k, 1, h, w)
    for band in range(1, k):
        length = max(2.0, coherence_length(side, band))
        gh, gw = max(2, math.ceil(h / length) + 2), max(2, math.ceil(w / length) + 2)
        field = F.interpolate(torch.randn(b, 1, gh, gw, generator=generator), size=(h, w), mode="bicubic",
                              align_corners=True)
        offset = torch.rand(b, 1, 1, 1, generator=generator)
        phases[:, band] = 2 * math.pi * amount * (offset + 0.5 * field)
    return torch.polar(torch.ones_like(phases), phases)


def band_energy(volume: SpectralVolume) -> list[list[float]]:
    """Mean per-pixel displacement amplitude (pixels) of each band, per batch item."""
    return volume.band_amplitude().float().cpu().tolist()


def total_amplitude(volume: SpectralVolume) -> list[float]:
    """Mean over pixels of the time-RMS displacement (pixels), 0 Hz offset excluded, per batch item."""
    return volume.rms_displacement().mean(dim=(1, 2)).float().cpu().tolist()


def spectrum_report(before: SpectralVolume, after: SpectralVolume) -> list[dict]:
    """What the browser editor draws: one entry per batch item."""
    energy_in, energy_out, totals = band_energy(before), band_energy(after), total_amplitude(after)
    frequencies = [float(f) for f in after.frequencies_hz]
    return [{"frequencies_hz": frequencies, "energy_in": energy_in[i], "energy_out": energy_out[i],
             "total_amplitude_px": totals[i]} for i in range(after.batch)]


def _flag(data: dict, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"edit: {key!r} must be true or false, got {value!r}")
    return value
