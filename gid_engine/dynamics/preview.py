"""A small copy of the modal basis for the browser's live preview (simulated and drawn in the page)."""
from __future__ import annotations

import base64

import torch
import torch.nn.functional as F

from ..imageops import work_size
from ..spectral.volume import SpectralVolume
from .modal import ModalBasis
from .simulate import Controls, mode_frequencies

PREVIEW_LONG_SIDE = 64
PREVIEW_MODES = 16  # the strongest real modes; enough for a faithful preview, ~100 KB of JSON
INT16_MAX = 32767


def basis_preview(volume: SpectralVolume, controls: Controls, long_side: int = PREVIEW_LONG_SIDE,
                  modes: int = PREVIEW_MODES) -> dict:
    """JSON-able: the first picture's strongest mode shapes on a coarse grid (int16 + a scale per mode, base64,
    layout [M, 2, h, w], pixels of the volume's grid), their frequencies and damping, and the pull regularisation."""
    basis = ModalBasis.from_volume(volume.select(0))
    keep = basis.strongest(min(modes, basis.count))
    h, w = work_size(volume.height, volume.width, long_side)
    shapes = basis.shapes[0, keep].float()  # [M, 2, H, W]
    if (h, w) != tuple(shapes.shape[-2:]):
        shapes = F.interpolate(shapes, size=(h, w), mode="area" if h < volume.height else "bilinear")
    peak = shapes.abs().amax(dim=(1, 2, 3)).clamp(min=1e-12)
    quantised = torch.round(shapes / peak[:, None, None, None] * INT16_MAX).to(torch.int16).cpu().contiguous()
    omegas, zetas = mode_frequencies(basis, controls)
    return {
        "width": volume.width, "height": volume.height, "grid_width": w, "grid_height": h,
        "modes": len(keep), "omegas": [float(omegas[i]) for i in keep], "zetas": [float(zetas[i]) for i in keep],
        "scales": [float(s) / INT16_MAX for s in peak.cpu()],
        "lambda": float(basis.regularisation()[0]), "frames": controls.frames, "fps": controls.fps,
        "strength": controls.strength,
        "shapes_int16": base64.b64encode(quantised.numpy().astype("<i2").tobytes()).decode("ascii"),
    }
