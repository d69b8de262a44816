"""Custom socket types of the pack (one place)."""
from comfy_api.latest import io

from ..gid_engine.spectral.motion import FPS, FRAMES  # noqa: F401 (the engine's ranges, for the nodes' widgets)

GIDModel = io.Custom("GID_MODEL")
SpectralVolumeType = io.Custom("SPECTRAL_VOLUME")
MotionTextureType = io.Custom("MOTION_TEXTURE")
RendererModel = io.Custom("GID_RENDERER")

CATEGORY = "GID"
