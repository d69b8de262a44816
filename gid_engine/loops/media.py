"""Reading pictures and masks, writing animations (WebP, GIF via Pillow; MP4 via OpenCV)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


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
    return (frames.detach().float().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def write_animation(frames: torch.Tensor, path: str | Path, fps: float, quality: int = 90) -> Path:
    """Write [N, H, W, 3] frames as a looping .webp/.gif or an .mp4 (by suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8(frames)
    suffix = path.suffix.lower()
    if suffix in (".webp", ".gif"):
        from PIL import Image

        images = [Image.fromarray(p) for p in pixels]
        duration = max(1, round(1000 / fps))
        extra = {"quality": quality, "method": 4} if suffix == ".webp" else {}
        images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, **extra)
    elif suffix == ".mp4":
        import cv2

        h, w = pixels.shape[1:3]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path}")
        for p in pixels:
            writer.write(p[:, :, ::-1].copy())
        writer.release()
    else:
        raise ValueError(f"unsupported animation format {suffix!r}: use .webp, .gif or .mp4")
    return path


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
