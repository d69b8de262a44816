"""LoadGIDModel and PredictSpectralVolume: where motion comes from."""
from __future__ import annotations

import folder_paths
import torch
from comfy_api.latest import io

from ..gid_engine import checks
from ..gid_engine.sources.base import (BUILTIN_SOURCES, DEFAULT_SOURCE, SOURCE_OPTIONS, builtin_source,
                                      predict_with_mobility)
from ..gid_engine.sources.checkpoints import load_motion_source
from ..gid_engine.sources.ldm.model import SAMPLING_INPUTS
from ..gid_engine.sources.prior import PRESETS
from . import comfy_bridge as bridge
from .types import CATEGORY, GIDModel, SpectralVolumeType
from .ui_payloads import mobility_ui, motion_overlay_ui


class LoadGIDModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        options = list(BUILTIN_SOURCES) + folder_paths.get_filename_list(bridge.MODEL_FOLDER)
        return io.Schema(
            node_id="GID_LoadGIDModel",
            display_name="Load GID Model",
            category=CATEGORY,
            description="Chooses where motion comes from: a built-in source that needs no download (the "
                        "procedural motion prior, default) or a GID checkpoint (.safetensors) from models/gid.",
            inputs=[io.Combo.Input("model_name", options=options, default=DEFAULT_SOURCE,
                                   tooltip="Built-in motion sources first, then files in models/gid.")],
            outputs=[GIDModel.Output(display_name="gid_model", tooltip="A motion source for Predict Spectral Volume.")],
        )

    @classmethod
    def validate_inputs(cls, model_name: str):
        if model_name in BUILTIN_SOURCES:
            return True
        return bridge.listing_check("model_name", model_name, bridge.model_listing(bridge.MODEL_FOLDER))

    @classmethod
    def execute(cls, model_name: str) -> io.NodeOutput:
        if model_name in BUILTIN_SOURCES:
            return io.NodeOutput(builtin_source(model_name))
        path = bridge.listed_file("model_name", model_name, bridge.model_listing(bridge.MODEL_FOLDER))
        # the file's tensors and the model built from them are both in memory for a moment
        bridge.require_memory(f"model_name: loading {model_name}", 2 * path.stat().st_size, bridge.output_device())
        return io.NodeOutput(bridge.managed_source(load_motion_source(path)))


SEED = checks.Range(0, 0xFFFFFFFF, whole=True)
INTENSITY = checks.Range(0.0, 20.0)


class PredictSpectralVolume(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_PredictSpectralVolume",
            display_name="Predict Spectral Volume",
            category=CATEGORY,
            description="Predicts how every pixel of the picture oscillates: K=16 complex Fourier coefficients "
                        "of each pixel's x/y trajectory (0 to 3 Hz in 0.2 Hz steps).",
            inputs=[
                GIDModel.Input("gid_model", tooltip="From Load GID Model."),
                io.Image.Input("image", tooltip="The still picture to bring to life (a batch gives one volume each)."),
                io.Int.Input("seed", default=0, **SEED.widget(), control_after_generate=True,
                             tooltip="Different seeds give different, equally plausible motions."),
                io.Float.Input("intensity", default=1.0, **INTENSITY.widget(), step=0.05,
                               tooltip="Motion amplitude; 1 matches measured real plant motion in wind."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Where motion is allowed (1 = moves, 0 = stays exactly still); "
                                      "same size as the image."),
                io.Combo.Input("preset", options=list(PRESETS), default=SOURCE_OPTIONS["preset"].neutral, optional=True,
                               tooltip="Motion character of the built-in procedural prior: "
                                       + " ".join(f"{name}: {p.description}" for name, p in PRESETS.items())
                                       + " Learned checkpoints take their motion from the picture: keep auto."),
                io.Int.Input("steps", default=0, **SAMPLING_INPUTS["steps"].widget(), optional=True,
                             tooltip="Learned models: DDIM denoising steps (paper: 250; 500 with loop guidance). "
                                     "0 = the checkpoint's default."),
                io.Float.Input("cfg", default=0.0, **SAMPLING_INPUTS["cfg"].widget(), step=0.05, optional=True,
                               tooltip="Learned models: classifier-free guidance w in (1 + w) eps(picture) - w "
                                       "eps(none); 0 = off (one network pass per step). Paper: 1.75 when looping."),
                io.Float.Input("loop_guidance", default=0.0, **SAMPLING_INPUTS["loop_guidance"].widget(), step=10.0,
                               optional=True,
                               tooltip="Learned models: looping self-guidance strength u (paper section 5) that "
                                       "makes the predicted motion's last frame meet its first, so loops need "
                                       "less snapping. 0 = off; 200-1000 typical; about 3x slower sampling."),
                io.String.Input("motion_brush", default="", optional=True,
                                tooltip="Motion brush (built-in prior): strokes painted on the picture in the "
                                        "editor on this node: 'moves' and 'still' regions with soft edges, and "
                                        "'direction' strokes that set a region's sway axis and strength. Kept as "
                                        "JSON, so saved workflows and API runs carry it. Empty = no brush."),
            ],
            outputs=[SpectralVolumeType.Output(display_name="spectral_volume",
                                               tooltip="Per-pixel motion spectrum for Motion Texture."),
                     io.Mask.Output(display_name="mobility",
                                    tooltip="How free each pixel is to move (1 = sways fully, 0 = still), as the "
                                            "motion was built: inspect it, edit it and feed it back as a mask.")],
        )

    @classmethod
    def execute(cls, gid_model, image, seed: int, intensity: float, mask=None, **source_options) -> io.NodeOutput:
        bridge.check_image("image", image)
        if not all(hasattr(gid_model, method) for method in ("predict", "with_options", "estimate_bytes")):
            raise ValueError(f"gid_model: expected a GID model from Load GID Model, got {type(gid_model).__name__}")
        seed = SEED.check("seed", seed)
        intensity = INTENSITY.check("intensity", intensity)
        # every source option goes to the source, which applies its own and refuses the others
        source = gid_model.with_options(**{name: value for name, value in source_options.items() if value is not None})
        b, h, w, _ = image.shape
        device = bridge.compute_device()
        bridge.require_memory(f"image: predicting the motion of {b} picture(s) of {w}x{h}",
                              source.estimate_bytes(b, h, w), device, hint="use a smaller picture (Upscale Image)")
        picture = image.permute(0, 3, 1, 2).to(device)
        mask4 = None if mask is None else bridge.check_mask("mask", mask, image).to(device).unsqueeze(1)
        volume, mobility = predict_with_mobility(source, picture, seed=seed, mask=mask4, intensity=intensity,
                                                 progress=bridge.progress_reporter(b))
        mobility = mobility[:, 0].to(bridge.output_device(), torch.float32)
        ui = {**motion_overlay_ui(volume, image), **mobility_ui(mobility, image)}
        return io.NodeOutput(volume.to(bridge.output_device()), mobility, ui=ui)
