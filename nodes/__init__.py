"""ComfyUI nodes of the pack: thin V3 wrappers over gid_engine."""
from .model_nodes import LoadGIDModel, PredictSpectralVolume
from .motion_nodes import MotionTexture
from .render_nodes import LoopVideo, SoftmaxSplatRender
from .renderer_nodes import LoadGIDRenderer
from .edit_nodes import EditSpectrum
from .dynamics_nodes import InteractiveDynamics
from .video_nodes import LoadSpectralVolume, SaveSpectralVolume, VideoToSpectralVolume
from .save_nodes import RenderLoopFile, SaveLoop
from .tracks_nodes import MotionTracks
from .search_aliases import with_search_aliases

NODES = with_search_aliases([
    LoadGIDModel, PredictSpectralVolume, MotionTexture, SoftmaxSplatRender, LoopVideo, VideoToSpectralVolume,
    SaveSpectralVolume, LoadSpectralVolume, EditSpectrum, LoadGIDRenderer, SaveLoop, RenderLoopFile,
    InteractiveDynamics, MotionTracks])
