"""Custom socket types of the pack (one place)."""
from comfy_api.latest import io

from ..gid_engine.spectral.motion import FPS, FRAMES  # noqa: F401 (the engine's ranges, for the nodes' widgets)

GIDModel = io.Custom("GID_MODEL")
SpectralVolumeType = io.Custom("SPECTRAL_VOLUME")
MotionTextureType = io.Custom("MOTION_TEXTURE")
RendererModel = io.Custom("GID_RENDERER")

CATEGORY = "GID"

# Core's point-track type (comfy_extras/nodes_wanmove.py); ComfyUI before it (0.3.75 and older) gets the same
# socket name, so links to and from core and other packs' TRACKS connect either way.
TracksType = getattr(io, "Tracks", None) or io.Custom("TRACKS")
