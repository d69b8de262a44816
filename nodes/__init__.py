"""ComfyUI nodes of the pack: thin V3 wrappers over gid_engine."""
from .model_nodes import LoadGIDModel, PredictSpectralVolume
from .motion_nodes import MotionTexture
from .render_nodes import LoopVideo, SoftmaxSplatRender

NODES = [LoadGIDModel, PredictSpectralVolume, MotionTexture, SoftmaxSplatRender, LoopVideo]
