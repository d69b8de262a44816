"""LoadGIDRenderer: a learned renderer checkpoint from models/gid for Softmax Splat Render."""
from __future__ import annotations

import os

from comfy_api.latest import io

from ..gid_engine import formats
from ..gid_engine.render.learned import load_renderer
from . import comfy_bridge as bridge
from .types import CATEGORY, RendererModel


def is_renderer_file(path: str) -> bool:
    try:
        return formats.RENDERER.marks(formats.read_header(path).metadata)
    except (ValueError, OSError):
        return False


def renderer_listing() -> dict[str, tuple[str, str]]:
    """The models/gid files ComfyUI lists whose header says gid.renderer (motion models are Load GID Model's)."""
    return {name: entry for name, entry in bridge.model_listing(bridge.MODEL_FOLDER).items()
            if name.lower().endswith((".safetensors", ".sft")) and is_renderer_file(os.path.join(*entry))}


class LoadGIDRenderer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_LoadGIDRenderer",
            display_name="Load GID Renderer",
            category=CATEGORY,
            description="Loads a learned feature-pyramid renderer (paper section 4; train one with python -m "
                        "gid_engine.train --phases renderer) from models/gid for Softmax Splat Render's "
                        "renderer_model input. Without it, Softmax Splat Render uses the training-free renderer.",
            inputs=[io.Combo.Input("renderer_name", options=sorted(renderer_listing()),
                                   tooltip="Renderer checkpoints (gid.renderer .safetensors) in models/gid.")],
            outputs=[RendererModel.Output(display_name="renderer_model")],
        )

    @classmethod
    def validate_inputs(cls, renderer_name: str):
        return bridge.listing_check("renderer_name", renderer_name, renderer_listing())

    @classmethod
    def execute(cls, renderer_name: str) -> io.NodeOutput:
        path = bridge.listed_file("renderer_name", renderer_name, renderer_listing())
        try:
            return io.NodeOutput(bridge.ManagedRenderer(load_renderer(path)))
        except ValueError as err:
            raise ValueError(f"renderer_name: {err}") from None


def check_renderer(value) -> bridge.ManagedRenderer:
    if not isinstance(value, bridge.ManagedRenderer):
        raise ValueError(f"renderer_model: expected a GID_RENDERER from Load GID Renderer, got {type(value).__name__}")
    return value
