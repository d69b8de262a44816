"""Motion from a video, and spectral volumes as files: VideoToSpectralVolume, SaveSpectralVolume, LoadSpectralVolume."""
from __future__ import annotations

import os
from pathlib import Path

import folder_paths
from comfy_api.latest import io

from ..gid_engine.spectral.volume import SpectralVolume
from ..gid_engine.sources.video import (AUTO_BINS, AUTO_REFERENCE, CAMERA_MODES, CLIP_FPS, VideoMotionOptions,
                                        extract_motion, extraction_bytes, motion_preview)
from . import comfy_bridge as bridge
from .types import CATEGORY, SpectralVolumeType
from .ui_payloads import video_motion_ui

LIMITS = VideoMotionOptions.LIMITS
VOLUME_SUFFIX = ".safetensors"
OUTPUT_TAG = " [output]"


class VideoToSpectralVolume(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_VideoToSpectralVolume",
            display_name="Video to Spectral Volume",
            category=CATEGORY,
            description="Measures a clip's motion as a spectral volume: dense optical flow from a reference frame "
                        "directly to every later frame (warm-started from the previous frame), unreliable pixels "
                        "(occlusion, flicker) filled from reliable neighbours, duplicated frames interpolated, "
                        "optional camera-motion removal, then a per-pixel FFT at the clip's frame rate. Feed it "
                        "to Motion Texture to loop the clip's motion on its first frame or on another picture.",
            inputs=[
                io.Image.Input("images", tooltip="The clip's frames (e.g. Get Video Components' images)."),
                io.Float.Input("fps", default=30.0, **CLIP_FPS.widget(), step=0.5,
                               tooltip="The clip's frame rate (e.g. Get Video Components' fps)."),
                io.Int.Input("num_bins", default=AUTO_BINS, **LIMITS["num_bins"].widget(),
                             tooltip="Frequency bins kept (the paper uses 16); 0 = as many as the clip supports, up "
                                     "to 16 (a clip of N frames after the reference allows at most (N - 1) // 2 + 1)."),
                io.Int.Input("reference_frame", default=AUTO_REFERENCE, **LIMITS["reference"].widget(),
                             tooltip="Frame the motion is measured from; -1 picks the first frame after a fade-in. "
                                     "Earlier frames are not used."),
                io.Int.Input("max_size", default=384, **LIMITS["max_size"].widget(), step=16,
                             tooltip="Long side (pixels) the flow is measured at; 0 = full size. Larger is slower "
                                     "and keeps finer motion."),
                io.Combo.Input("camera_motion", options=list(CAMERA_MODES), default=CAMERA_MODES[0],
                               tooltip="Keep the camera's motion, or remove it by a robust affine or homography "
                                       "fit on the static background (for hand-held clips)."),
                io.Int.Input("period", default=0, **LIMITS["period"].widget(),
                             tooltip="Frames in the FFT window (0 = the whole clip from the reference frame). "
                                     "With resample_fps, a common window for many clips (the paper: 150 at 30 fps)."),
                io.Float.Input("resample_fps", default=0.0, **LIMITS["resample_fps"].widget(), step=0.5,
                               tooltip="Resample the motion in time to this frame rate first (0 = the clip's own)."),
            ],
            outputs=[SpectralVolumeType.Output(display_name="spectral_volume"),
                     io.Image.Output(display_name="reference_image",
                                     tooltip="The frame the motion is measured from (render on this one)."),
                     io.Image.Output(display_name="motion_preview",
                                     tooltip="Mean motion amplitude (brighter = moves more); red = unreliable flow.")],
        )

    @classmethod
    def execute(cls, images, fps: float, num_bins: int, reference_frame: int, max_size: int, camera_motion: str,
                period: int, resample_fps: float) -> io.NodeOutput:
        bridge.check_image("images", images)
        if images.shape[0] < 2:
            raise ValueError(f"images: a clip needs at least 2 frames to show motion, got {images.shape[0]}")
        options = VideoMotionOptions(num_bins=num_bins, reference=reference_frame, max_size=max_size,
                                     camera=camera_motion, period=period, resample_fps=resample_fps).checked()
        n, h, w, _ = images.shape
        bridge.require_memory(f"images: measuring the motion of {n} frames of {w}x{h}",
                              extraction_bytes(n, h, w, fps, options), bridge.output_device(),
                              hint="use a shorter clip or a smaller max_size")
        motion = extract_motion(images, fps, options, device=bridge.compute_device(),
                                progress=bridge.progress_reporter(images.shape[0]))
        out = bridge.output_device()
        return io.NodeOutput(motion.volume.to(out), motion.reference_image.unsqueeze(0).to(out),
                             motion_preview(motion).unsqueeze(0).to(out),
                             ui=video_motion_ui(motion.report, motion.volume, motion.reference_image.unsqueeze(0)))


class SaveSpectralVolume(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_SaveSpectralVolume",
            display_name="Save Spectral Volume",
            category=CATEGORY,
            description="Writes a spectral volume (a motion) to ComfyUI's output folder as a .safetensors file, so "
                        "it can be shared and replayed on any picture with Load Spectral Volume.",
            inputs=[
                SpectralVolumeType.Input("spectral_volume"),
                io.String.Input("filename_prefix", default="gid/motion",
                                tooltip="File name prefix; may include a subfolder (e.g. gid/motion)."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, spectral_volume, filename_prefix: str) -> io.NodeOutput:
        if not isinstance(spectral_volume, SpectralVolume):
            raise ValueError(f"spectral_volume: expected a SPECTRAL_VOLUME, got {type(spectral_volume).__name__}")
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), spectral_volume.width, spectral_volume.height)
        os.makedirs(folder, exist_ok=True)
        filename = f"{name}_{counter:05}_{VOLUME_SUFFIX}"
        spectral_volume.save(Path(folder) / filename)
        return io.NodeOutput()


def volume_listing() -> dict[str, tuple[str, str]]:
    """Shown name -> (folder, relative name) of the .safetensors files under the input folder (plain names) and
    the output folder (tagged [output])."""
    found: dict[str, tuple[str, str]] = {}
    for root, tag in ((folder_paths.get_input_directory(), ""), (folder_paths.get_output_directory(), OUTPUT_TAG)):
        base = Path(root)
        if base.is_dir():
            for path in sorted(base.rglob("*" + VOLUME_SUFFIX)):
                relative = path.relative_to(base).as_posix()
                found.setdefault(relative + tag, (str(base), relative))
    return found


def volume_files() -> list[str]:
    return list(volume_listing())


class LoadSpectralVolume(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_LoadSpectralVolume",
            display_name="Load Spectral Volume",
            category=CATEGORY,
            description="Loads a spectral volume saved by Save Spectral Volume (from the input folder, or the output "
                        "folder marked [output]); Motion Texture replays it on any picture, resized to fit.",
            inputs=[io.Combo.Input("file", options=volume_files(),
                                   tooltip="A spectral volume file; put shared ones in ComfyUI's input folder.")],
            outputs=[SpectralVolumeType.Output(display_name="spectral_volume")],
        )

    @classmethod
    def validate_inputs(cls, file: str):
        return bridge.listing_check("file", file, volume_listing())

    @classmethod
    def fingerprint_inputs(cls, file: str):
        try:  # stat only a listed file: never an arbitrary path named by a prompt
            return os.path.getmtime(bridge.listed_file("file", file, volume_listing()))
        except (bridge.UnlistedFile, OSError):
            return file

    @classmethod
    def execute(cls, file: str) -> io.NodeOutput:
        path = bridge.listed_file("file", file, volume_listing())
        # the file's two float tensors and the complex volume made from them
        bridge.require_memory(f"file: loading {file}", 2 * path.stat().st_size, bridge.output_device())
        return io.NodeOutput(SpectralVolume.load(path, device=bridge.output_device()))
