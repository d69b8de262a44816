"""Seamless looping files: MP4 (H.264), WebM (VP9), animated WebP and GIF, written as a stream.

    with open_loop_writer("out.mp4", fps=30) as writer:
        for chunk in chunks:               # [n, H, W, 3] float in 0..1 (any device) or uint8
            writer.write(chunk)
    # closing finishes the file; an exception inside the block leaves no partial file behind

Memory stays flat in the frame count: each chunk is converted and handed to the encoder, which keeps only
compressed data. Why the settings are what they are (figures in benchmarks/loop_files.py and the README):
the motion GID makes is a fraction of a grey level per frame, smaller than ordinary codec noise, so
- each file has a single key frame (one group of pictures per loop): a key frame in the middle of the loop
  re-draws every pixel with fresh noise, which shows as a pulse;
- MP4/WebM code frame 0 first on its own and add that key frame's coding error to every later frame
  (it is a still pattern, invisible), so the predicted frames copy still pixels exactly and the last frame
  wraps onto frame 0 without a jump;
- MP4 uses a fixed, low quantiser without coefficient decimation or dead zones, so the small changes are
  coded instead of skipped (skipped changes accumulate into a jump at the wrap);
- WebP is lossless with an optional near-lossless step (values quantised under a fixed ordered dither, so
  pixels that do not move keep identical values in every frame);
- GIF uses one palette for the whole loop and the same fixed dither, so colours do not flicker; its 256
  colours cannot reach 40 dB PSNR on photographs.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from .. import checks
from ..spectral.motion import FPS
from .encode_yuv import VideoCodecWriter

FORMATS = ("mp4", "webm", "webp", "gif")
DEFAULT_FORMAT = "mp4"
# One quality scale for every format (what each value means per format: quality_setting()).
DEFAULT_QUALITY = 90
MIN_FRAMES = 2
LOSSLESS_WEBM_QUALITY = 90
# Browsers show GIF frame delays under 2 centiseconds as 10 centiseconds.
GIF_MAX_FPS = 50.0


def format_of(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return checks.choice("output", suffix, FORMATS) if suffix else checks.choice("output", "(no suffix)", FORMATS)


def quality_setting(format: str, quality: int) -> dict[str, int]:
    """The codec setting behind a quality value (0..100; higher = closer to the frames, larger files)."""
    quality = checks.integer("quality", quality, minimum=0, maximum=100)
    if format == "mp4":
        # qp 0 would switch x264 to its lossless profile, which browsers and phones do not play. From the default
        # up the quantiser is 3: qp 4 let a magnified loop jump 1.3x at the wrap, qp 2 let still pixels next to
        # motion change by 3 levels at 1024x576 (benchmarks/loop_files.py); below it the size falls (qp 51 at 0).
        return {"qp": 3 if quality >= 90 else round(3 + (90 - quality) * 48 / 90)}
    if format == "webm":
        # 0 = lossless VP9 (browsers play it): the only VP9 setting that keeps still pixels still (see encode_yuv).
        return {"q": 0 if quality >= LOSSLESS_WEBM_QUALITY else 1 + round((LOSSLESS_WEBM_QUALITY - quality) * 0.5)}
    if format == "webp":
        # 1 = lossless; larger steps quantise values (under a fixed dither) so the lossless coder packs more.
        return {"step": 1 + (100 - quality) // 3}
    return {}


def to_uint8(frames) -> torch.Tensor:
    """[n, H, W, 3] float 0..1 tensor or uint8 array/tensor -> uint8 tensor on the frames' device (rounded)."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames)
    if not isinstance(frames, torch.Tensor):
        raise ValueError(f"images: expected frames [n, H, W, 3], got {type(frames).__name__}")
    if frames.dtype != torch.uint8:
        # Rounded on the frames' own device; values outside 0..1 saturate at black/white like any 8-bit file.
        checks.finite_tensor("images", frames)
        frames = (frames.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return frames


def ordered_dither(height: int, width: int) -> np.ndarray:
    """A fixed 4x4 Bayer offset field in [0, 1): the same for every frame, so still pixels quantise alike."""
    bayer = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.float32)
    tiles = np.tile((bayer + 0.5) / 16, (height // 4 + 1, width // 4 + 1))
    return tiles[:height, :width, None]


def quantize_dithered(pixels: np.ndarray, step: int, dither: np.ndarray) -> np.ndarray:
    """Values onto multiples of `step` (the top level included), with a fixed ordered dither."""
    if step <= 1:
        return pixels
    levels = 255 // step
    q = np.floor(pixels.astype(np.float32) / step + dither)
    return (np.minimum(q, levels) * step).astype(np.uint8)


class LoopWriter:
    """Streaming writer of one looping file. write() chunks of frames, then close(); or use it as a context."""

    format = ""

    def __init__(self, path: str | os.PathLike[str], fps: float, quality: int = DEFAULT_QUALITY,
                 metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self.fps = FPS.check("fps", fps)
        self.quality = checks.integer("quality", quality, minimum=0, maximum=100)
        self.metadata = dict(metadata or {})
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (height, width)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed when complete: a failed or cancelled encode leaves nothing.
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._closed = False

    def write(self, frames) -> None:
        pixels = to_uint8(frames)
        if pixels.ndim == 3:
            pixels = pixels[None]
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"images: expected frames [n, H, W, 3], got {tuple(pixels.shape)}")
        if self._closed:
            raise RuntimeError(f"{self.path.name}: the writer is closed")
        if self.size is None:
            self.size = tuple(pixels.shape[1:3])
            self._start(*self.size)
        elif tuple(pixels.shape[1:3]) != self.size:
            raise ValueError(f"images: a {pixels.shape[2]}x{pixels.shape[1]} frame after "
                             f"{self.size[1]}x{self.size[0]} frames; every frame must have the same size")
        self._write_chunk(pixels)

    def _write_chunk(self, pixels: torch.Tensor) -> None:
        for frame in pixels.cpu().numpy():
            self._write_frame(frame)
            self.frames_written += 1

    def close(self) -> Path:
        """Finish the file. Fewer than 2 frames is an error (a loop needs something to loop)."""
        if self._closed:
            return self.path
        if self.frames_written < MIN_FRAMES:
            self.abort()
            raise ValueError(f"images: a loop needs at least {MIN_FRAMES} frames, got {self.frames_written}")
        try:
            self._finish()
            os.replace(self._partial, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file (on error or cancel)."""
        self._closed = True
        try:
            self._release()
        finally:
            self._partial.unlink(missing_ok=True)

    def __enter__(self) -> "LoopWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    # Per format:
    def _start(self, height: int, width: int) -> None:
        raise NotImplementedError

    def _write_frame(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Free encoder resources without finishing the file."""


class _VideoWriter(LoopWriter):
    """MP4 (H.264 yuv420p, fast start) and WebM (VP9 yuv420p) through PyAV."""

    def _start(self, height: int, width: int) -> None:
        self._codec = VideoCodecWriter(self._partial, self.format, self.fps, quality_setting(self.format, self.quality),
                                       self.metadata, height, width)

    def _write_chunk(self, pixels: torch.Tensor) -> None:
        self._codec.write(pixels)
        self.frames_written += pixels.shape[0]

    def _finish(self) -> None:
        self._codec.finish()

    def _release(self) -> None:
        if hasattr(self, "_codec"):
            self._codec.release()


class _Mp4Writer(_VideoWriter):
    format = "mp4"


class _WebmWriter(_VideoWriter):
    format = "webm"


class _WebpWriter(LoopWriter):
    format = "webp"

    def _start(self, height: int, width: int) -> None:
        from PIL import _webp

        self._step = quality_setting("webp", self.quality)["step"]
        self._dither = ordered_dither(height, width)
        # Pillow's own animation encoder, fed frame by frame (Image.save would need every frame at once).
        # kmin/kmax past any loop length: one key frame (a key frame mid-loop re-draws every pixel).
        never = 1 << 30
        self._encoder = _webp.WebPAnimEncoder((width, height), 0, 0, False, never - 1, never, False, False)

    def _timestamp_ms(self, index: int) -> int:
        # Whole milliseconds per frame, rounded on the running total so the loop's length stays exact.
        return round(index * 1000.0 / self.fps)

    def _write_frame(self, frame: np.ndarray) -> None:
        from PIL import Image

        image = Image.fromarray(quantize_dithered(frame, self._step, self._dither))
        # Lossless: quality is effort here; 25 with method 1 is the speed/size point measured in the benchmark.
        self._encoder.add(image.getim(), self._timestamp_ms(self.frames_written), True, 25, 100, 1)

    def _finish(self) -> None:
        from PIL import Image

        self._encoder.add(None, self._timestamp_ms(self.frames_written), True, 25, 100, 0)
        exif = b""
        if self.metadata:
            # ComfyUI's layout (SaveAnimatedWEBP): "prompt:<json>" in EXIF Model, other keys from EXIF Make down.
            tags = Image.Exif()
            tag = 0x010F
            for key, value in self.metadata.items():
                if key == "prompt":
                    tags[0x0110] = f"prompt:{value}"
                else:
                    tags[tag] = f"{key}:{value}"
                    tag -= 1
            exif = tags.tobytes()
        data = self._encoder.assemble(b"", exif, b"")
        if data is None:
            raise OSError(f"{self.path.name}: the WebP encoder returned nothing")
        self._partial.write_bytes(data)
        self._encoder = None

    def _release(self) -> None:
        self._encoder = None


class _GifWriter(LoopWriter):
    """GIF89a written frame by frame: one global palette, fixed ordered dither, loops forever."""

    format = "gif"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.fps > GIF_MAX_FPS:
            raise ValueError(f"fps: {self.fps:g} is too fast for GIF; allowed: <= {GIF_MAX_FPS:g} "
                             "(browsers play faster GIFs at 10 fps); use mp4, webm or webp")

    def write(self, frames) -> None:
        if self.size is None:
            # The palette comes from the first chunk: a loop shows the same picture throughout.
            self._palette_source = to_uint8(frames).cpu().numpy()
        super().write(frames)

    def _start(self, height: int, width: int) -> None:
        from PIL import Image

        sample = self._palette_source.reshape(-1, width, 3) if self._palette_source.ndim == 4 else self._palette_source
        stride = max(1, sample.shape[0] // 2048)  # at most ~2048 rows of pixels feed the palette
        self._palette = Image.fromarray(np.ascontiguousarray(sample[::stride])).quantize(256, Image.Quantize.MEDIANCUT)
        del self._palette_source
        self._dither = ordered_dither(height, width) - 0.5
        self._file = open(self._partial, "wb")
        colours = np.zeros(768, np.uint8)
        used = np.frombuffer(bytes(self._palette.getpalette()[:768]), np.uint8)
        colours[:used.size] = used
        # Dither amplitude: about half the typical distance between palette colours.
        self._dither_gain = float(np.clip(256 / max(2.0, math.sqrt(used.size / 3)), 4, 24))
        self._file.write(b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little")
                         + bytes([0xF7, 0, 0]) + colours.tobytes())
        # NETSCAPE2.0 application extension: loop count 0 = forever.
        self._file.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")

    def _write_frame(self, frame: np.ndarray) -> None:
        from PIL import Image, ImageFile

        index = self.frames_written
        delay = round((index + 1) * 100 / self.fps) - round(index * 100 / self.fps)  # centiseconds, total exact
        dithered = np.clip(frame.astype(np.float32) + self._dither * self._dither_gain + 0.5, 0, 255).astype(np.uint8)
        indexed = Image.fromarray(dithered).quantize(palette=self._palette, dither=Image.Dither.NONE)
        h, w = self.size
        # Graphic control extension (disposal: keep, no transparency) and a full-frame image descriptor.
        self._file.write(b"\x21\xf9\x04\x04" + max(2, delay).to_bytes(2, "little") + b"\x00\x00")
        self._file.write(b"\x2c\x00\x00\x00\x00" + w.to_bytes(2, "little") + h.to_bytes(2, "little") + b"\x00\x08")
        ImageFile._save(indexed, self._file, [ImageFile._Tile("gif", (0, 0, w, h), 0, "P")])
        self._file.write(b"\x00")

    def _finish(self) -> None:
        self._file.write(b"\x3b")
        self._file.close()

    def _release(self) -> None:
        if hasattr(self, "_file") and not self._file.closed:
            self._file.close()


_WRITERS = {cls.format: cls for cls in (_Mp4Writer, _WebmWriter, _WebpWriter, _GifWriter)}


def open_loop_writer(path: str | os.PathLike[str], fps: float, quality: int = DEFAULT_QUALITY,
                     metadata: dict[str, str] | None = None, format: str | None = None) -> LoopWriter:
    """A streaming writer for `path`; the format is `format` or the file's suffix (.mp4, .webm, .webp, .gif)."""
    format = format_of(path) if format is None else checks.choice("format", format, FORMATS)
    return _WRITERS[format](path, fps, quality, metadata)


def write_loop(frames, path: str | os.PathLike[str], fps: float, quality: int = DEFAULT_QUALITY,
               metadata: dict[str, str] | None = None, format: str | None = None, chunk: int = 16,
               progress=None) -> Path:
    """All frames [n, H, W, 3] at once, in chunks (progress(done, total) after each; it may raise to cancel)."""
    total = int(frames.shape[0]) if hasattr(frames, "shape") and len(frames.shape) == 4 else 0
    with open_loop_writer(path, fps, quality, metadata, format) as writer:
        for start in range(0, total, chunk):
            writer.write(frames[start:start + chunk])
            if progress is not None:
                progress(min(total, start + chunk), total)
    return writer.path
