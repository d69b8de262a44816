"""EditSpectrum: change any spectral volume band by band (gains, magnify, direction, phases, masks)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from comfy_api.latest import io

from ..gid_engine import checks
from ..gid_engine.spectral.edit import SpectrumEdit, apply_edit
from ..gid_engine.spectral.volume import SpectralVolume
from . import comfy_bridge as bridge
from .types import CATEGORY, SpectralVolumeType
from .ui_payloads import spectrum_ui

# A mask may come at the picture's size while the volume sits on another grid; the shapes must still agree.
ASPECT_TOLERANCE = 0.02


class EditSpectrum(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_EditSpectrum",
            display_name="Edit Spectrum",
            category=CATEGORY,
            description="Edits a spectral volume (predicted, extracted from video or loaded) band by band: a gain "
                        "per frequency band, magnify or minify all motion, restrict or rotate its direction, damp "
                        "high bands, new random phases, freeze a region; optionally only inside a mask with a "
                        "feathered edge. The whole edit is one JSON value, shared with the browser editor.",
            inputs=[
                SpectralVolumeType.Input("spectral_volume"),
                io.String.Input("edit", default="{}", multiline=True,
                                tooltip='The edit as JSON; {} changes nothing. Keys: "gains" (one per band, 0 Hz '
                                        'first), "magnify", "restrict_deg", "restrict_strength", "rotate_deg", '
                                        '"damp_above_hz", "damp_power", "reseed", "reseed_amount", "freeze", '
                                        '"feather_px", "invert_mask". Example: {"magnify": 2, "damp_above_hz": 1.5}'),
                io.Mask.Input("mask", optional=True,
                              tooltip="Where the edit applies (1 = fully, 0 = not at all); any mask from a "
                                      "segmentation node, at the picture's or the volume's size."),
            ],
            outputs=[SpectralVolumeType.Output(display_name="spectral_volume",
                                               tooltip="The edited volume, for Motion Texture.")],
        )

    @classmethod
    def validate_inputs(cls, edit=None, **_) -> bool | str:
        """Bad JSON is refused when the prompt is queued, before anything runs (the band count needs the volume)."""
        if not isinstance(edit, str):
            return True  # fed by a link: checked when it runs
        try:
            SpectrumEdit.parse(edit)
        except ValueError as err:
            return str(err)
        return True

    @classmethod
    def execute(cls, spectral_volume, edit: str, mask=None) -> io.NodeOutput:
        if not isinstance(spectral_volume, SpectralVolume):
            raise ValueError(f"spectral_volume: expected a SPECTRAL_VOLUME, got {type(spectral_volume).__name__}")
        spec = SpectrumEdit.parse(edit)
        volume = spectral_volume.to(bridge.compute_device())
        mask4 = None if mask is None else mask_on_grid(mask, volume).to(volume.device)
        edited = apply_edit(volume, spec, mask4)
        return io.NodeOutput(edited.to(bridge.output_device()), ui=spectrum_ui(volume, edited))


def mask_on_grid(mask, volume: SpectralVolume):
    """MASK [B or 1, H, W] of any size with the volume's aspect -> [B or 1, 1, h, w] on the volume's grid."""
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask: expected a MASK [B, H, W], got {shape}")
    mask = checks.finite_tensor("mask", mask.float().unsqueeze(0) if mask.ndim == 2 else mask.float(),
                                minimum=0.0, maximum=1.0)
    if mask.shape[0] not in (1, volume.batch):
        raise ValueError(f"mask: {mask.shape[0]} masks for {volume.batch} spectral volumes; give one or one each")
    h, w = mask.shape[-2:]
    if abs((w / h) / (volume.width / volume.height) - 1) > ASPECT_TOLERANCE:
        raise ValueError(f"mask: the mask is {w}x{h} but the spectral volume is {volume.width}x{volume.height}; "
                         "they must have the same aspect ratio")
    mask = mask.unsqueeze(1)
    if (h, w) != (volume.height, volume.width):
        mask = F.interpolate(mask, size=(volume.height, volume.width), mode="bilinear", align_corners=False,
                             antialias=h > volume.height)
    return mask.clamp(0, 1)  # only the resampling's overshoot: the values were checked to lie in 0..1
