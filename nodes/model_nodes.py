"""LoadGIDModel and PredictSpectralVolume: where motion comes from."""
from __future__ import annotations

import dataclasses

import folder_paths
from comfy_api.latest import io

from ..gid_engine.sources.prior import DEFAULT_PRESET, PRESETS, ProceduralPrior
from ..gid_engine.sources.base import BUILTIN_SOURCES, DEFAULT_SOURCE, builtin_source
from ..gid_engine.sources.checkpoints import load_motion_source
from ..gid_engine.sources.ldm.model import GIDMotionModel
from . import comfy_bridge as bridge
from .types import CATEGORY, GIDModel, SpectralVolumeType
from .ui_payloads import motion_overlay_ui


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
        try:
            bridge.listed_file("model_name", model_name, bridge.model_listing(bridge.MODEL_FOLDER))
        except bridge.UnlistedFile as refused:
            return str(refused)
        return True

    @classmethod
    def execute(cls, model_name: str) -> io.NodeOutput:
        if model_name in BUILTIN_SOURCES:
            return io.NodeOutput(builtin_source(model_name))
        path = bridge.listed_file("model_name", model_name, bridge.model_listing(bridge.MODEL_FOLDER))
        return io.NodeOutput(bridge.managed_source(load_motion_source(path)))


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
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF, control_after_generate=True,
                             tooltip="Different seeds give different, equally plausible motions."),
                io.Float.Input("intensity", default=1.0, min=0.0, max=20.0, step=0.05,
                               tooltip="Motion amplitude; 1 matches measured real plant motion in wind."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Where motion is allowed (1 = moves, 0 = stays exactly still); "
                                      "same size as the image."),
                io.Combo.Input("preset", options=list(PRESETS), default=DEFAULT_PRESET, optional=True,
                               tooltip="Motion character of the built-in procedural prior: "
                                       + " ".join(f"{name}: {p.description}" for name, p in PRESETS.items())
                                       + " Learned checkpoints take their motion from the picture: keep auto."),
                io.Int.Input("steps", default=0, min=0, max=1000, optional=True,
                             tooltip="Learned models: DDIM denoising steps (paper: 250; 500 with loop guidance). "
                                     "0 = the checkpoint's default."),
                io.Float.Input("cfg", default=0.0, min=0.0, max=20.0, step=0.05, optional=True,
                               tooltip="Learned models: classifier-free guidance w in (1 + w) eps(picture) - w "
                                       "eps(none); 0 = off (one network pass per step). Paper: 1.75 when looping."),
                io.Float.Input("loop_guidance", default=0.0, min=0.0, max=100000.0, step=10.0, optional=True,
                               tooltip="Learned models: looping self-guidance strength u (paper section 5) that "
                                       "makes the predicted motion's last frame meet its first, so loops need "
                                       "less snapping. 0 = off; 200-1000 typical; about 3x slower sampling."),
            ],
            outputs=[SpectralVolumeType.Output(display_name="spectral_volume",
                                               tooltip="Per-pixel motion spectrum for Motion Texture.")],
        )

    @classmethod
    def execute(cls, gid_model, image, seed: int, intensity: float, mask=None,
                preset: str | None = None, steps: int = 0, cfg: float = 0.0,
                loop_guidance: float = 0.0) -> io.NodeOutput:
        bridge.check_image("image", image)
        if not hasattr(gid_model, "predict"):
            raise ValueError(f"gid_model: expected a GID model from Load GID Model, got {type(gid_model).__name__}")
        preset = preset or DEFAULT_PRESET
        if preset not in PRESETS:
            raise ValueError(f"preset: unknown motion preset {preset!r}; known: {', '.join(PRESETS)}")
        if isinstance(gid_model, ProceduralPrior):
            gid_model = dataclasses.replace(gid_model, preset=preset)
        elif preset != DEFAULT_PRESET:
            raise ValueError(f"preset: {preset!r} only applies to the built-in procedural prior; "
                             f"{getattr(gid_model, 'name', 'this model')} predicts motion itself, so set preset to auto")
        sampling = {"cfg": float(cfg), "loop_guidance": float(loop_guidance), **({"steps": int(steps)} if steps else {})}
        learned = isinstance(getattr(gid_model, "model", gid_model), GIDMotionModel)
        if not learned:
            for name, value, default in (("steps", steps, 0), ("cfg", cfg, 0.0), ("loop_guidance", loop_guidance, 0.0)):
                if value != default:
                    raise ValueError(f"{name}: only learned checkpoints sample with diffusion; "
                                     f"{getattr(gid_model, 'name', 'this model')} does not use it, so set it to {default}")
        device = bridge.compute_device()
        picture = image.permute(0, 3, 1, 2).to(device)
        mask4 = None if mask is None else bridge.check_mask("mask", mask, image).to(device).unsqueeze(1)
        volume = gid_model.predict(picture, seed=seed, mask=mask4, intensity=intensity,
                                   progress=bridge.progress_reporter(image.shape[0]),
                                   **({"sampling": sampling} if learned else {}))
        return io.NodeOutput(volume.to(bridge.output_device()), ui=motion_overlay_ui(volume, image))
