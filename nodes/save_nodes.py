"""Save Loop: frames + fps -> a seamless looping MP4, WebM, WebP or GIF in ComfyUI's output folder.
Render Loop File: picture + motion texture -> the same file, rendered and encoded chunk by chunk."""
from __future__ import annotations

import json
import os

import folder_paths
from comfy.cli_args import args as comfy_args
from comfy_api.latest import io

from ..gid_engine import checks
from ..gid_engine.loops import encode
from ..gid_engine.loops.loop import SeamMeter
from ..gid_engine.render.renderer import render_chunks
from . import comfy_bridge as bridge
from .render_nodes import RenderJob
from .types import CATEGORY, FPS
from .ui_payloads import loop_files_ui, loop_report_ui

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
                io.Float.Input("fps", default=30.0, **FPS.widget(), force_input=True,
                               tooltip="Frames per second (from the node that made the frames)."),
                *file_inputs(),
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
        format, quality = checked_file_settings(format, quality)
        (path, shown), = output_files(filename_prefix, images.shape[2], images.shape[1], format, 1)
        encode.write_loop(images, path, fps, quality=quality, metadata=workflow_metadata(cls.hidden), format=format,
                          progress=bridge.progress_reporter(images.shape[0]))
        return io.NodeOutput(ui=loop_files_ui([shown]))


class RenderLoopFile(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_RenderLoopFile",
            display_name="Render Loop File",
            category=CATEGORY,
            description="Renders the animation straight into a looping file, chunk by chunk: what Softmax Splat "
                        "Render followed by Save Loop make, without holding every frame in memory, so long and "
                        "large loops (minutes, 4K) fit. The file is seamless when the motion texture loops (its "
                        "loop option, the default). For cross-fades, retiming or repeats, or to pass frames to "
                        "other nodes, use Softmax Splat Render, Loop Video and Save Loop instead.",
            inputs=[
                *RenderJob.leading_inputs("The picture to animate (one file is written per picture)."),
                *file_inputs(),
                *RenderJob.optional_inputs(),
            ],
            outputs=[],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, image, motion_texture, temperature: float, format: str, quality: int, filename_prefix: str,
                importance=None, renderer_model=None) -> io.NodeOutput:
        format, quality = checked_file_settings(format, quality)
        checks.relative_path("filename_prefix", filename_prefix)  # refused before any rendering work
        job = RenderJob.prepare(image, motion_texture, temperature, importance, renderer_model, hold_frames=False)
        if job.motion.frame_count < encode.MIN_FRAMES:
            raise ValueError(f"motion_texture: a loop needs at least {encode.MIN_FRAMES} frames, got "
                             f"{job.motion.frame_count}")
        batch, _, height, width = job.picture.shape
        files = output_files(filename_prefix, width, height, format, batch)
        metadata = workflow_metadata(cls.hidden)
        seams = [SeamMeter() for _ in files]
        writers = []
        try:
            for path, _ in files:
                writers.append(encode.open_loop_writer(path, job.motion.fps, quality, metadata, format))
            for _, frames in render_chunks(job.renderer, job.picture, job.motion, temperature=job.temperature,
                                           metric=job.metric, out_device="cpu",
                                           progress=bridge.progress_reporter(job.motion.frame_count)):
                for writer, seam, clip in zip(writers, seams, frames):
                    writer.write(clip)
                    seam.add(clip)
            for writer in writers:
                writer.close()
        except BaseException:
            # Failed, cancelled, or one file could not be finished: no file of this run is left, finished or not.
            for writer in writers:
                writer.abort()
                writer.path.unlink(missing_ok=True)
            raise
        count = job.motion.frame_count
        report = [{"loop_frames": count, "output_frames": count, "crossfade_frames": 0,
                   "seam_ratio_after": seam.ratio(), "fps": job.motion.fps} for seam in seams]
        return io.NodeOutput(ui={**loop_files_ui([shown for _, shown in files]), **loop_report_ui(report)})


def file_inputs() -> list:
    """format, quality and filename_prefix: the inputs of every node that writes a loop file."""
    return [
        io.Combo.Input("format", options=list(encode.FORMATS), default=encode.DEFAULT_FORMAT, tooltip=FORMAT_TOOLTIP),
        io.Int.Input("quality", default=encode.DEFAULT_QUALITY, min=0, max=100, tooltip=QUALITY_TOOLTIP),
        io.String.Input("filename_prefix", default="gid/loop",
                        tooltip="File name prefix inside the output folder; may include subfolders (gid/loop). "
                                "Absolute paths and '..' are refused."),
    ]


def checked_file_settings(format, quality) -> tuple[str, int]:
    return checks.choice("format", format, encode.FORMATS), checks.integer("quality", quality, minimum=0, maximum=100)


def output_files(filename_prefix, width: int, height: int, format: str, count: int) -> list[tuple[str, dict]]:
    """`count` new files in the output folder: (path, the entry the frontend shows) each, numbered on from the
    folder's last file with this prefix; refused if the prefix leads outside the output folder."""
    prefix = checks.relative_path("filename_prefix", filename_prefix)
    output_dir = os.path.abspath(folder_paths.get_output_directory())
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(prefix, output_dir, width, height)
    files = []
    for index in range(count):
        filename = f"{name}_{counter + index:05}_.{format}"
        path = os.path.abspath(os.path.join(folder, filename))
        # %date% expansion or odd names must not lead outside the output folder either.
        if os.path.commonpath([output_dir, path]) != output_dir:
            raise ValueError(f"filename_prefix: {filename_prefix!r} leads outside the output folder")
        files.append((path, {"filename": filename, "subfolder": subfolder, "type": "output"}))
    return files


def workflow_metadata(hidden) -> dict[str, str]:
    """What core savers embed: the prompt and the workflow (extra_pnginfo), as JSON text."""
    if comfy_args.disable_metadata or hidden is None:
        return {}
    metadata = {}
    if hidden.prompt is not None:
        metadata["prompt"] = json.dumps(hidden.prompt)
    for key, value in (hidden.extra_pnginfo or {}).items():
        metadata[key] = json.dumps(value)
    return metadata
