"""Reading pictures, masks and clips; writing animations (through loops/encode.py, which owns every format)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import encode


def read_image(path: str | Path) -> torch.Tensor:
    """Picture file -> [1, H, W, 3] float32 in 0..1 (ComfyUI's IMAGE layout)."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"picture not found: {path}")
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        array = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).unsqueeze(0)


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Mask file -> [1, H, W] in 0..1 (white = may move); alpha is used when present."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    with Image.open(path) as im:
        channel = im.getchannel("A") if "A" in im.getbands() else im.convert("L")
        array = np.asarray(channel, dtype=np.float32) / 255.0
    mask = torch.from_numpy(array.copy()).unsqueeze(0)
    if size is not None and tuple(mask.shape[-2:]) != tuple(size):
        raise ValueError(f"mask {path.name} is {mask.shape[-1]}x{mask.shape[-2]} but the picture is {size[1]}x{size[0]}")
    return mask


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[N, H, W, 3] float 0..1 -> uint8 array (rounded, saturating at the ends of the range)."""
    return encode.to_uint8(frames).cpu().numpy()


def write_animation(frames: torch.Tensor, path: str | Path, fps: float, quality: int = encode.DEFAULT_QUALITY) -> Path:
    """Write [N, H, W, 3] frames as a seamless looping .mp4/.webm/.webp/.gif (by suffix); see loops/encode.py."""
    return encode.write_loop(frames, path, fps, quality=quality)


def read_video(path: str | Path, max_frames: int = 0) -> tuple[torch.Tensor, float]:
    """Clip file -> ([T, H, W, 3] float32 in 0..1, fps). Animated .webp/.gif via Pillow, the rest via OpenCV."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    frames: list[np.ndarray] = []
    if path.suffix.lower() in (".webp", ".gif"):
        from PIL import Image

        durations = []
        with Image.open(path) as im:
            for i in range(getattr(im, "n_frames", 1)):
                if max_frames and i >= max_frames:
                    break
                im.seek(i)
                frames.append(np.asarray(im.convert("RGB")))
                durations.append(im.info.get("duration") or 0)
        positive = [d for d in durations if d > 0]
        fps = 1000.0 / float(np.median(positive)) if positive else 0.0
    else:
        import cv2

        capture = cv2.VideoCapture(str(path))
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        while not max_frames or len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[:, :, ::-1])
        capture.release()
    if not frames:
        raise ValueError(f"{path.name}: no frames could be decoded")
    if not fps > 0:
        raise ValueError(f"{path.name}: the file does not state its frame rate")
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0), fps
