"""SoftmaxSplatRender and LoopVideo: frames out, as an IMAGE batch plus fps."""
from __future__ import annotations

import dataclasses

import torch
from comfy_api.latest import io

from ..gid_engine.loops.loop import LIMITS as LOOP_LIMITS, make_loop
from ..gid_engine.spectral.motion import MotionTexture
from ..gid_engine.render.renderer import (DEFAULT_TEMPERATURE, TEMPERATURE, Renderer, SplatRenderer,
                                          check_render_fits, importance_from_mask, render_frames)
from . import comfy_bridge as bridge
from .renderer_nodes import check_renderer
from .types import CATEGORY, FPS, MotionTextureType, RendererModel
from .ui_payloads import loop_preview_ui, loop_report_ui

STREAMING_HINT = ("render fewer frames or a smaller picture, or render straight into a file with Render Loop File "
                  "(chunk by chunk, without holding every frame)")


class SoftmaxSplatRender(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_SoftmaxSplatRender",
            display_name="Softmax Splat Render",
            category=CATEGORY,
            description="Renders the animation by forward-warping the picture with each displacement field "
                        "(softmax splatting, Niklaus & Liu 2020); what moves more is drawn in front, holes are "
                        "filled from their surroundings. Needs no weights unless a learned renderer model is "
                        "connected.",
            inputs=[
                *RenderJob.leading_inputs("The picture to animate (the one the motion was predicted for)."),
                io.Float.Input("fps", default=30.0, **FPS.widget(), step=0.5, force_input=True, optional=True,
                               tooltip="Passed through to the fps output (defaults to the motion texture's)."),
                *RenderJob.optional_inputs(),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="Animation frames."),
                     io.Float.Output(display_name="fps")],
        )

    @classmethod
    def execute(cls, image, motion_texture, temperature: float, fps: float | None = None,
                importance=None, renderer_model=None) -> io.NodeOutput:
        fps = None if fps is None else FPS.check("fps", fps)
        job = RenderJob.prepare(image, motion_texture, temperature, importance, renderer_model, hold_frames=True)
        fps = motion_texture.fps if fps is None else fps
        frames = render_frames(job.renderer, job.picture, job.motion, temperature=job.temperature,
                               metric=job.metric, out_device=job.out_device,
                               progress=bridge.progress_reporter(job.motion.frame_count))
        frames = frames.reshape(-1, *frames.shape[2:])
        return io.NodeOutput(frames, fps, ui=loop_preview_ui(frames, fps))


@dataclasses.dataclass
class RenderJob:
    """What a rendering node hands the engine: checked inputs, the motion on the picture's grid, the renderer."""

    renderer: Renderer
    picture: torch.Tensor  # [B, 3, H, W] on the compute device
    motion: MotionTexture
    metric: torch.Tensor | None
    temperature: float
    out_device: torch.device

    @staticmethod
    def leading_inputs(image_tooltip: str) -> list:
        """The picture, the motion texture and the temperature: the first inputs of every rendering node."""
        return [
            io.Image.Input("image", tooltip=image_tooltip),
            MotionTextureType.Input("motion_texture"),
            io.Float.Input("temperature", default=DEFAULT_TEMPERATURE, **TEMPERATURE.widget(), step=0.05,
                           tooltip="How strongly faster-moving pixels win where pixels overlap "
                                   "(0 = plain average; 0.5 scored best on real and synthetic clips; "
                                   "resolution-independent)."),
        ]

    @staticmethod
    def optional_inputs() -> list:
        """The importance mask and the learned renderer: the last inputs of every rendering node."""
        return [
            io.Mask.Input("importance", optional=True,
                          tooltip="Overrides the depth proxy: brighter = in front where pixels overlap."),
            RendererModel.Input("renderer_model", optional=True,
                                tooltip="A learned renderer from Load GID Renderer; without it the "
                                        "training-free softmax-splat renderer draws the frames."),
        ]

    @classmethod
    def prepare(cls, image, motion_texture, temperature: float, importance=None, renderer_model=None, *,
                hold_frames: bool) -> "RenderJob":
        """Check the inputs and that the render fits: every frame (hold_frames) or one chunk at a time."""
        bridge.check_image("image", image)
        if not isinstance(motion_texture, MotionTexture):
            raise ValueError(f"motion_texture: expected a MOTION_TEXTURE, got {type(motion_texture).__name__}")
        b, h, w, _ = image.shape
        if motion_texture.batch != b:
            raise ValueError(f"image: a batch of {b} pictures for a motion texture of {motion_texture.batch}")
        device, out_device = bridge.compute_device(), bridge.output_device()
        check_render_fits(f"motion_texture: rendering {motion_texture.frame_count} frames of {w}x{h}", motion_texture,
                          h, w, device, out_device, hold_frames=hold_frames, budget=bridge.comfy_budget,
                          advice=STREAMING_HINT)
        motion = motion_texture.replace(volume=motion_texture.volume.resize(h, w).to(device))
        metric = None
        if importance is not None:
            mask = bridge.check_mask("importance", importance, image).to(device).unsqueeze(1).expand(b, 1, h, w)
            metric = importance_from_mask(mask, temperature)
        renderer = SplatRenderer() if renderer_model is None else check_renderer(renderer_model).loaded()
        return cls(renderer, image.permute(0, 3, 1, 2).to(device), motion, metric, temperature, out_device)


class LoopVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_LoopVideo",
            display_name="Loop Video",
            category=CATEGORY,
            description="Makes any frame sequence loop seamlessly: clips that already loop pass unchanged; others "
                        "get their tail cross-faded into their head. Can resample the loop to any frame count, "
                        "repeat it, and start on the frame closest to a given picture.",
            inputs=[
                io.Image.Input("images", tooltip="Frames (e.g. from Softmax Splat Render or any video node)."),
                io.Float.Input("fps", default=30.0, **FPS.widget(), force_input=True),
                io.Int.Input("crossfade_frames", default=-1, **LOOP_LIMITS["crossfade_frames"].widget(),
                             tooltip="-1: only if the clip does not loop already; 0: never; N: cross-fade N frames."),
                io.Int.Input("frames_per_loop", default=0, **LOOP_LIMITS["frames_per_loop"].widget(),
                             tooltip="0 keeps the loop's length; otherwise the loop is retimed to this many frames."),
                io.Int.Input("repeats", default=1, **LOOP_LIMITS["repeats"].widget(), tooltip="How many times the loop plays."),
                io.Image.Input("start_picture", optional=True,
                               tooltip="Start the loop on the frame closest to this picture."),
            ],
            outputs=[io.Image.Output(display_name="images"), io.Float.Output(display_name="fps"),
                     io.Int.Output(display_name="frame_count")],
        )

    @classmethod
    def execute(cls, images, fps: float, crossfade_frames: int, frames_per_loop: int, repeats: int,
                start_picture=None) -> io.NodeOutput:
        bridge.check_image("images", images, min_size=1)
        fps = FPS.check("fps", fps)  # passed through: no stage checks it
        picture = None
        if start_picture is not None:
            bridge.check_image("start_picture", start_picture, min_size=1)
            if start_picture.shape[1:] != images.shape[1:]:
                raise ValueError(f"start_picture: is {start_picture.shape[2]}x{start_picture.shape[1]} but the frames "
                                 f"are {images.shape[2]}x{images.shape[1]}")
            picture = start_picture[0]
        frames, report = make_loop(images, crossfade=crossfade_frames, frames_per_loop=frames_per_loop,
                                   repeats=repeats, picture=picture, budget=bridge.comfy_budget,
                                   advice=STREAMING_HINT)
        return io.NodeOutput(frames, fps, frames.shape[0], ui={**loop_report_ui([report]), **loop_preview_ui(frames, fps)})
