"""Save Loop: frames + fps -> a seamless looping MP4, WebM, WebP or GIF in ComfyUI's output folder."""
from __future__ import annotations

import json
import os

import folder_paths
from comfy.cli_args import args as comfy_args
from comfy_api.latest import io

from ..gid_engine import checks
from ..gid_engine.loops import encode
from . import comfy_bridge as bridge
from .types import CATEGORY

FORMAT_TOOLTIP = (
    "mp4: H.264 (yuv420p, fast start), plays everywhere: browsers, phones, social sites; the default. "
    "webm: VP9 (lossless at quality >= 90), browsers; about as large as mp4. "
    "webp: animated WebP, near-lossless: the closest to the frames, about 2-3x the mp4's size. "
    "mp4 and webm share colour between 2x2 pixels (4:2:0), which costs fine saturated detail "
    "(the README lists what that allows per picture). "
    "gif: 256 colours, one palette for the whole loop and a fixed dither so nothing flickers; it loops "
    "seamlessly and keeps still pixels still, but cannot reach 40 dB on photographs (about 33 dB), is the "
    "largest, and plays at most 50 fps. README: 'Saving loops' has the measured sizes.")
QUALITY_TOOLTIP = (
    "0..100. The default (90) keeps the loop seamless in the file: no jump at the wrap, no key-frame pulses, "
    ">= 40 dB against the frames where 4:2:0 colour allows, still pixels still. mp4: quantiser "
    "qp 3 at 90 and above (lower quantisers measured worse), rising to 51 at 0; webm: lossless at >= 90, below a constant quantiser "
    "1 + (90 - quality) / 2; webp: 100 = lossless, lower = near-lossless (values on steps of "
    "1 + (100 - quality) // 3 under a fixed dither). Lower values make smaller files whose codec noise can "
    "exceed GID's subtle motion (a visible pulse or jump). gif ignores it.")


class SaveLoop(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_SaveLoop",
            display_name="Save Loop",
            category=CATEGORY,
            description="Saves frames as a seamless looping file (MP4, WebM, animated WebP or GIF) in the output "
                        "folder and plays it on the node. Encoder settings keep the subtle motion clean: one key "
                        "frame per loop, still pixels copied exactly, no jump where the loop wraps. The workflow "
                        "is embedded (MP4, WebM, WebP), so dropping the file on ComfyUI restores the graph.",
            inputs=[
                io.Image.Input("images", tooltip="The loop's frames (Softmax Splat Render, Loop Video or any video "
                                                 "node)."),
                io.Float.Input("fps", default=30.0, min=0.01, max=1000.0, force_input=True,
                               tooltip="Frames per second (from the node that made the frames)."),
                io.Combo.Input("format", options=list(encode.FORMATS), default=encode.DEFAULT_FORMAT,
                               tooltip=FORMAT_TOOLTIP),
                io.Int.Input("quality", default=encode.DEFAULT_QUALITY, min=0, max=100, tooltip=QUALITY_TOOLTIP),
                io.String.Input("filename_prefix", default="gid/loop",
                                tooltip="File name prefix inside the output folder; may include subfolders "
                                        "(gid/loop). Absolute paths and '..' are refused."),
            ],
            outputs=[],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, fps: float, format: str, quality: int, filename_prefix: str) -> io.NodeOutput:
        bridge.check_image("images", images, min_size=1)
        if images.shape[0] < encode.MIN_FRAMES:
            raise ValueError(f"images: a loop needs at least {encode.MIN_FRAMES} frames, got {images.shape[0]}")
        fps = checks.number("fps", fps, above=0, maximum=1000)
        format = checks.choice("format", format, encode.FORMATS)
        quality = checks.integer("quality", quality, minimum=0, maximum=100)
        prefix = checks.relative_path("filename_prefix", filename_prefix)
        height, width = images.shape[1:3]
        output_dir = os.path.abspath(folder_paths.get_output_directory())
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(prefix, output_dir, width, height)
        filename = f"{name}_{counter:05}_.{format}"
        path = os.path.abspath(os.path.join(folder, filename))
        # %date% expansion or odd names must not lead outside the output folder either.
        if os.path.commonpath([output_dir, path]) != output_dir:
            raise ValueError(f"filename_prefix: {filename_prefix!r} leads outside the output folder")
        encode.write_loop(images, path, fps, quality=quality, metadata=cls._workflow_metadata(), format=format,
                          progress=bridge.progress_reporter(images.shape[0]))
        return io.NodeOutput(ui={"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}],
                                 "animated": (True,)})

    @classmethod
    def _workflow_metadata(cls) -> dict[str, str]:
        """What core savers embed: the prompt and the workflow (extra_pnginfo), as JSON text."""
        if comfy_args.disable_metadata or cls.hidden is None:
            return {}
        metadata = {}
        if cls.hidden.prompt is not None:
            metadata["prompt"] = json.dumps(cls.hidden.prompt)
        for key, value in (cls.hidden.extra_pnginfo or {}).items():
            metadata[key] = json.dumps(value)
        return metadata
