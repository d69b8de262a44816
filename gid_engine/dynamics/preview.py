"""A small copy of the modal basis for the browser's live preview (simulated and drawn in the page)."""
from __future__ import annotations

import base64

import torch
import torch.nn.functional as F

from ..imageops import work_size
from ..spectral.volume import SpectralVolume
from .actions import DRAG_SECONDS
from .modal import DIRECTION_FLOOR, OBJECT_RADIUS, ModalBasis
from .simulate import Controls

PREVIEW_LONG_SIDE = 64
PREVIEW_MODES = 16  # the strongest real modes; enough for a faithful preview, ~100 KB of JSON
INT16_MAX = 32767


def basis_preview(objects: SpectralVolume, controls: Controls, long_side: int = PREVIEW_LONG_SIDE,
                  modes: int = PREVIEW_MODES) -> dict:
    """JSON-able, from the objects' modes a simulation drove (DynamicsMotion.volume, modal.coherent of the input;
    taken as they are, so the page previews exactly what was rendered): the first picture's strongest mode shapes
    on a coarse grid (int16 + a scale per mode, base64, layout [M, 2, h, w], pixels of the volume's grid), their natural frequencies (rad/s, before stiffness), the
    range of all modes' frequencies (for the Rayleigh fit), how far each grid cell can be pulled (modal.ModalBasis.reach,
    of all modes; int16 + a scale, base64, layout [h, w]), the object window's radius, the pull's direction floor
    and the run's controls. The page re-derives damping and stiffness from the node's widgets, so changing them
    previews at once."""
    volume = objects.select(0)
    basis = ModalBasis.from_volume(volume)
    keep = basis.strongest(min(modes, basis.count))
    h, w = work_size(volume.height, volume.width, long_side)
    small = volume.resize(h, w)  # resize scales vectors to the small grid: undo it, keep volume pixels
    unscale = torch.tensor([volume.width / w, volume.height / h], dtype=torch.float64, device=volume.device)
    shapes = (basis.shapes(small.coeffs)[0, keep] * unscale.view(1, 2, 1, 1)).float()  # [M, 2, h, w]
    peak = shapes.abs().amax(dim=(1, 2, 3)).clamp(min=1e-12)
    quantised = torch.round(shapes / peak[:, None, None, None] * INT16_MAX).to(torch.int16).cpu().contiguous()
    amplitude = F.interpolate(basis.amplitude()[:, None].double(), size=(h, w), mode="area")[0, 0]
    reach = (amplitude * basis.reach_per_px()[0].to(amplitude.device)).float()
    reach_peak = float(reach.abs().max().clamp(min=1e-12))
    return {
        "width": volume.width, "height": volume.height, "grid_width": w, "grid_height": h,
        "modes": len(keep), "omegas": [float(basis.omegas[i]) for i in keep],
        "omega_range": [float(basis.omegas.min()), float(basis.omegas.max())],
        "scales": [float(s) / INT16_MAX for s in peak.cpu()],
        "reach_scale": reach_peak / INT16_MAX, "reach_int16": _int16(torch.round(reach / reach_peak * INT16_MAX)),
        "object_radius": OBJECT_RADIUS, "direction_floor": DIRECTION_FLOOR, "frames": controls.frames,
        "fps": controls.fps,
        "damping": controls.damping, "damping_model": controls.damping_model, "stiffness": controls.stiffness,
        "strength": controls.strength, "drag_seconds": DRAG_SECONDS,
        "shapes_int16": _int16(quantised),
    }


def _int16(values: torch.Tensor) -> str:
    return base64.b64encode(values.to(torch.int16).cpu().contiguous().numpy().astype("<i2").tobytes()).decode("ascii")
