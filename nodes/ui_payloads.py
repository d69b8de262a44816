"""Node `ui` payloads the pack's web extension draws: motion overlay pictures and looping previews.

Files go to ComfyUI's temp folder (served by /view, wiped at start and exit), downscaled so previews stay light.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from PIL import Image

import folder_paths
from comfy_api.latest import io, ui

from ..gid_engine.spectral.overlay import motion_overlay
from ..gid_engine.spectral.volume import SpectralVolume

# Previews are for the eye on a node, not for saving: no side needs to be larger than this.
PREVIEW_MAX_SIDE = 512


def _preview_size(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, PREVIEW_MAX_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _temp_file(prefix: str, width: int, height: int, suffix: str) -> tuple[str, str, str]:
    """(full path, file name, subfolder) of a fresh file in ComfyUI's temp folder."""
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_temp_directory(), width, height)
    filename = f"{name}_{counter:05}_{suffix}"
    return os.path.join(folder, filename), filename, subfolder


def motion_overlay_ui(volume: SpectralVolume, image: torch.Tensor | None = None, glyphs: bool = True) -> dict:
    """{"gid_motion": [one PNG per picture]}: amplitude heat map over the IMAGE [B, H, W, 3] (or alone)."""
    picture = None
    if image is not None:
        h, w = _preview_size(image.shape[1], image.shape[2])
        picture = image.permute(0, 3, 1, 2).to(volume.device, torch.float32)
        if (h, w) != tuple(picture.shape[2:]):
            picture = F.interpolate(picture, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    else:
        h, w = _preview_size(volume.height, volume.width)
        volume = volume.resize(h, w)
    overlay, peak = motion_overlay(volume, picture, glyphs=glyphs)
    pixels = (overlay.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).cpu().numpy()
    items = []
    for index, array in enumerate(pixels):
        path, filename, subfolder = _temp_file("gid_motion", w, h, ".png")
        Image.fromarray(array).save(path, compress_level=1)
        items.append({"filename": filename, "subfolder": subfolder, "type": "temp",
                      "peak_px": round(float(peak[index]), 3)})
    return {"gid_motion": items}


def loop_preview_ui(frames: torch.Tensor, fps: float) -> dict:
    """{"gid_preview": [an animated WebP of the frames IMAGE [N, H, W, 3], with its fps and frame count]}."""
    if frames.shape[0] == 0:
        raise ValueError("frames: the preview needs at least one frame")
    h, w = _preview_size(frames.shape[1], frames.shape[2])
    small = frames
    if (h, w) != tuple(frames.shape[1:3]):
        small = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(h, w), mode="bilinear",
                              align_corners=False, antialias=True).permute(0, 2, 3, 1)
    # method 0 is the fastest encoder setting; the preview is re-made on every run. No workflow metadata in it.
    saved = ui.ImageSaveHelper.save_animated_webp(small.cpu(), "gid_preview", io.FolderType.temp, None, fps=fps,
                                                  lossless=False, quality=80, method=0)
    return {"gid_preview": [{"filename": saved.filename, "subfolder": saved.subfolder, "type": "temp",
                             "fps": float(fps), "frame_count": int(frames.shape[0]),
                             # WebP stores whole milliseconds per frame: the rate it actually plays at.
                             "played_fps": round(1000.0 / int(1000.0 / fps), 3)}]}
