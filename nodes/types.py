"""Custom socket types of the pack (one place)."""
from comfy_api.latest import io

from ..gid_engine import checks

GIDModel = io.Custom("GID_MODEL")
SpectralVolumeType = io.Custom("SPECTRAL_VOLUME")
MotionTextureType = io.Custom("MOTION_TEXTURE")
RendererModel = io.Custom("GID_RENDERER")

CATEGORY = "GID"

# Frame rates and frame counts the pack's video nodes accept. 240 fps is the fastest common display rate (and
# the animated preview stores whole milliseconds per frame); 100000 frames is 55 minutes at 30 fps.
FPS = checks.Range(0.1, 240.0)
FRAMES = checks.Range(1, 100000, whole=True)
# Core's point-track type (comfy_extras/nodes_wanmove.py); ComfyUI before it (0.3.75 and older) gets the same
# socket name, so links to and from core and other packs' TRACKS connect either way.
TracksType = getattr(io, "Tracks", None) or io.Custom("TRACKS")
