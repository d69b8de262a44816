"""Every node `ui` payload of the pack, built here only; web/js/gid.js draws each by its key:
gid_motion (motion overlay pictures), gid_preview (looping previews), gid_loop (loop reports), gid_video_motion
(a clip's motion report), gid_spectrum (the spectrum editor's bands), gid_dynamics (the dynamics editor's modes
and picture), and images/animated (loop files, in ComfyUI's own form).

Files go to ComfyUI's temp folder (served by /view, wiped at start and exit). Previews are bounded in pixels and
frames whatever the output's size, so building one takes a fraction of a second even for a 100000-frame result.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from PIL import Image

import folder_paths

from ..gid_engine.dynamics.preview import basis_preview
from ..gid_engine.dynamics.simulate import Controls, DynamicsMotion
from ..gid_engine.spectral.edit import spectrum_report
from ..gid_engine.spectral.overlay import mobility_overlay, motion_overlay
from ..gid_engine.spectral.volume import SpectralVolume

# Previews are for the eye on a node, not for saving: no side needs to be larger than this...
PREVIEW_MAX_SIDE = 512
# ...nor an animated preview more frames than this; a longer result is previewed by every n-th frame, played at
# 1/n of its rate, so the preview still lasts as long as the result and shows the whole loop.
PREVIEW_MAX_FRAMES = 120


def preview_size(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, PREVIEW_MAX_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrunk(pictures: torch.Tensor, size: tuple[int, int], chunk: int = 8) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, h, w] with antialiasing (unchanged when already that size), a few pictures at a
    time so a strided view of large frames is never copied whole."""
    if tuple(pictures.shape[-2:]) == size:
        return pictures
    return torch.cat([F.interpolate(pictures[i:i + chunk].float(), size=size, mode="bilinear", align_corners=False,
                                    antialias=True) for i in range(0, pictures.shape[0], chunk)])


def save_temp_pictures(prefix: str, pictures: torch.Tensor, suffix: str, frame_ms: int | None = None) -> tuple[str, str]:
    """Write [N, H, W, 3] pictures in 0..1 to a fresh temp file: one PNG, or (frame_ms given) an animated WebP
    without workflow metadata. Returns (file name, subfolder)."""
    h, w = pictures.shape[1:3]
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_temp_directory(), w, h)
    filename = f"{name}_{counter:05}_{suffix}"
    arrays = (pictures.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    images = [Image.fromarray(array) for array in arrays]
    path = os.path.join(folder, filename)
    if frame_ms is None:
        images[0].save(path, compress_level=1)
    else:  # method 0 is the fastest encoder setting; the preview is re-made on every run
        images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0,
                       lossless=False, quality=80, method=0)
    return filename, subfolder


def motion_overlay_ui(volume: SpectralVolume, image: torch.Tensor | None = None, glyphs: bool = True) -> dict:
    """{"gid_motion": [one PNG per picture]}: amplitude heat map over the IMAGE [B, H, W, 3] (or alone)."""
    picture = None
    if image is not None:
        h, w = preview_size(image.shape[1], image.shape[2])
        picture = shrunk(image.permute(0, 3, 1, 2).to(volume.device, torch.float32), (h, w))
    else:
        h, w = preview_size(volume.height, volume.width)
        volume = volume.resize(h, w)
    overlay, peak = motion_overlay(volume, picture, glyphs=glyphs)
    items = []
    for index in range(overlay.shape[0]):
        filename, subfolder = save_temp_pictures("gid_motion", overlay[index:index + 1].permute(0, 2, 3, 1), ".png")
        items.append({"filename": filename, "subfolder": subfolder, "type": "temp",
                      "peak_px": round(float(peak[index]), 3)})
    return {"gid_motion": items}


def mobility_ui(mobility: torch.Tensor, image: torch.Tensor) -> dict:
    """{"gid_mobility": [one PNG per picture]}: where the picture moves (its colours) and stays still (grey, red
    tint). mobility [B, H, W] in 0..1, image [B, H, W, 3]."""
    size = preview_size(image.shape[1], image.shape[2])
    picture = shrunk(image.permute(0, 3, 1, 2).float(), size)
    small = shrunk(mobility.unsqueeze(1).to(picture.device, torch.float32), size)
    overlay = mobility_overlay(small, picture)
    items = []
    for index in range(overlay.shape[0]):
        filename, subfolder = save_temp_pictures("gid_mobility", overlay[index:index + 1].permute(0, 2, 3, 1), ".png")
        items.append({"filename": filename, "subfolder": subfolder, "type": "temp"})
    return {"gid_mobility": items}


def loop_preview_ui(frames: torch.Tensor, fps: float) -> dict:
    """{"gid_preview": [an animated WebP of the frames IMAGE [N, H, W, 3], with its fps and frame count]}."""
    count = frames.shape[0]
    if count == 0:
        raise ValueError("frames: the preview needs at least one frame")
    stride = math.ceil(count / PREVIEW_MAX_FRAMES)
    shown = frames[::stride]
    small = shrunk(shown.permute(0, 3, 1, 2), preview_size(frames.shape[1], frames.shape[2])).permute(0, 2, 3, 1)
    # WebP stores whole milliseconds per frame: the rate the preview actually plays at.
    frame_ms = max(1, round(1000.0 * stride / fps))
    filename, subfolder = save_temp_pictures("gid_preview", small, ".webp", frame_ms)
    return {"gid_preview": [{"filename": filename, "subfolder": subfolder, "type": "temp",
                             "fps": float(fps), "frame_count": int(count), "preview_frames": int(shown.shape[0]),
                             "preview_stride": int(stride), "played_fps": round(1000.0 * stride / frame_ms, 3)}]}


def loop_report_ui(reports: list[dict]) -> dict:
    """{"gid_loop": one make_loop-style report per loop (frames, seam ratio, cross-fade)}."""
    return {"gid_loop": list(reports)}


def loop_files_ui(files: list[dict]) -> dict:
    """Loop files in the output folder as ComfyUI's own savers report them (the frontend shows and plays them)."""
    return {"images": list(files), "animated": (True,)}


def video_motion_ui(report: dict, volume: SpectralVolume, reference: torch.Tensor) -> dict:
    """{"gid_video_motion": [the extraction's report]} and the motion overlay on the reference frame [1, H, W, 3]."""
    return {"gid_video_motion": [report], **motion_overlay_ui(volume, reference)}


def spectrum_ui(before: SpectralVolume, edited: SpectralVolume) -> dict:
    """{"gid_spectrum": per-band energy before and after an edit} and the edited volume's overlay."""
    return {"gid_spectrum": spectrum_report(before, edited), **motion_overlay_ui(edited)}


def dynamics_ui(volume: SpectralVolume, motion: DynamicsMotion, controls: Controls,
                image: torch.Tensor | None) -> dict:
    """{"gid_dynamics": [the modal basis preview of the motion's objects, the notes on actions their point could
    not follow, and the first picture as a temp PNG for the editor to warp]} and the input volume's overlay (the
    editor draws it too)."""
    payload = {**basis_preview(motion.volume, controls), "notes": list(motion.notes)}
    if image is not None:
        picture = shrunk(image[:1].permute(0, 3, 1, 2), preview_size(image.shape[1], image.shape[2]))
        filename, subfolder = save_temp_pictures("gid_dynamics", picture.permute(0, 2, 3, 1), ".png")
        payload = {**payload, "picture": {"filename": filename, "subfolder": subfolder, "type": "temp"}}
    return {"gid_dynamics": [payload], **motion_overlay_ui(volume, image)}
