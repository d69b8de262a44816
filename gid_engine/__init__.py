"""Generative Image Dynamics engine: spectral volumes, motion textures, softmax-splat rendering.

Pure PyTorch; imports nothing from ComfyUI. Runs on CUDA when the tensors are there, on CPU otherwise.
"""
from .loops.loop import make_loop, seam_ratio
from .spectral.motion import MotionTexture, displacement_at, trajectories_to_spectral_volume
from .spectral.normalization import FrequencyNormalization
from .pipeline import AnimateOptions, animate
from .sources.prior import ProceduralPrior
from .render.renderer import Renderer, SplatRenderer, importance_metric, render_frames
from .sources.base import BUILTIN_SOURCES, MotionSource, builtin_source
from .spectral.volume import SpectralVolume
from .render.splat import softmax_splat

__all__ = [
    "AnimateOptions", "BUILTIN_SOURCES", "FrequencyNormalization", "MotionSource", "MotionTexture",
    "ProceduralPrior", "Renderer", "SpectralVolume", "SplatRenderer", "animate", "builtin_source",
    "displacement_at", "importance_metric", "make_loop", "render_frames", "seam_ratio", "softmax_splat",
    "trajectories_to_spectral_volume",
]
