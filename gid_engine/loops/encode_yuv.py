"""The video side of encode.py: RGB -> BT.709 YUV 4:2:0 on the frames' device, and H.264 / VP9 through PyAV.

Frame 0 is first coded alone as a key frame; the difference between that decoded key frame and its input (the
key frame's coding error, a still pattern of a grey level or two) is added to every later frame. The predicted
frames then aim at what the decoder already shows for still content, so they copy it exactly, and the last
frame flows into frame 0 like any other step instead of jumping back to a freshly coded picture.
"""
from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# BT.709 luma weights; studio range (16..235 luma, 16..240 chroma), what browsers and phones expect.
KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB


def rgb_to_i420(pixels: torch.Tensor) -> np.ndarray:
    """uint8 [n, H, W, 3] (any device; H, W even) -> uint8 [n, H * 3 / 2, W]: the Y plane, then U, then V."""
    n, h, w, _ = pixels.shape
    rgb = pixels.permute(0, 3, 1, 2).float()
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    luma = KR * r + KG * g + KB * b
    y = 16 + luma * (219 / 255)
    cb = 128 + (b - luma) * (224 / 255 / (2 * (1 - KB)))
    cr = 128 + (r - luma) * (224 / 255 / (2 * (1 - KR)))
    # 4:2:0: one chroma sample per 2x2 block, the block's mean.
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    to8 = lambda t: (t + 0.5).clamp(0, 255).to(torch.uint8)  # noqa: E731 - values are inside 0..255 already
    planes = [to8(y).reshape(n, -1), to8(chroma[:, 0]).reshape(n, -1), to8(chroma[:, 1]).reshape(n, -1)]
    return torch.cat(planes, 1).reshape(n, h * 3 // 2, w).cpu().numpy()


def codec_options(format: str, setting: dict[str, int]) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """(codec, container format, codec options, container options) for a quality setting."""
    if format == "mp4":
        params = ":".join([
            "keyint=infinite", "scenecut=0",          # one key frame per file
            "no-dct-decimate=1", "trellis=0",         # keep the small residuals sub-grey-level motion makes...
            "deadzone-inter=0", "deadzone-intra=0",   # ...instead of rounding them away into a drift
            "psy-rd=0,0", "aq-mode=0", "no-mbtree=1",  # same quantiser everywhere: no per-frame quality swings
        ])
        return ("libx264", "mp4", {"qp": str(setting["qp"]), "preset": "medium", "x264-params": params},
                {"movflags": "use_metadata_tags+faststart"})
    # VP9: one key frame, no hidden alt-ref frames (they re-code the picture on their own schedule, which shows
    # as periodic pulses); lossless, or a constant quantiser (crf with qmin = qmax). VP9's transforms reach
    # 32x32 pixels, so any lossy quantiser lets motion's coding noise reach still pixels far from it.
    options = {"b": "0", "g": "1000000", "keyint_min": "1000000", "auto-alt-ref": "0", "lag-in-frames": "0",
               "deadline": "good", "cpu-used": "4", "row-mt": "1"}
    if setting["q"] == 0:
        options["lossless"] = "1"
    else:
        options.update(crf=str(setting["q"]), qmin=str(setting["q"]), qmax=str(setting["q"]))
    return "libvpx-vp9", "webm", options, {}


class VideoCodecWriter:
    """One H.264/MP4 or VP9/WebM file, frames in as uint8 RGB tensors."""

    def __init__(self, path: Path, format: str, fps: float, setting: dict[str, int], metadata: dict[str, str],
                 height: int, width: int):
        import av

        if height % 2 or width % 2:
            raise ValueError(f"images: {width}x{height} frames; {format.upper()} (YUV 4:2:0) needs an even width and "
                             "height; crop or resize by one pixel, or save as webp or gif")
        self.codec, self.container_format, self.options, container_options = codec_options(format, setting)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.height, self.width = height, width
        self.container = av.open(str(path), "w", format=self.container_format, options=container_options)
        for key, value in metadata.items():
            self.container.metadata[key] = value
        self.stream = self._add_stream(self.container)
        self.key_frame_error: np.ndarray | None = None
        self.index = 0

    def _add_stream(self, container):
        from av.video.reformatter import ColorRange, Colorspace

        stream = container.add_stream(self.codec, rate=self.rate)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.codec_context.colorspace = Colorspace.ITU709
        stream.codec_context.color_range = ColorRange.MPEG
        stream.codec_context.time_base = 1 / self.rate
        stream.options = dict(self.options)
        return stream

    def _encode(self, stream, container, planes: np.ndarray | None, index: int) -> None:
        import av

        frame = None
        if planes is not None:
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts, frame.time_base = index, 1 / self.rate
        for packet in stream.encode(frame):
            container.mux(packet)

    def _decoded_key_frame(self, planes: np.ndarray) -> np.ndarray:
        """What a decoder shows for these planes coded alone as a key frame with the same settings."""
        import av

        buffer = io.BytesIO()
        with av.open(buffer, "w", format=self.container_format) as probe:
            stream = self._add_stream(probe)
            self._encode(stream, probe, planes, 0)
            self._encode(stream, probe, None, 0)
        buffer.seek(0)
        with av.open(buffer) as decoded:
            frame = next(decoded.decode(video=0))
            return frame.to_ndarray(format="yuv420p")

    def write(self, pixels: torch.Tensor) -> None:
        for planes in rgb_to_i420(pixels):
            if self.key_frame_error is None:
                shown = self._decoded_key_frame(planes)
                self.key_frame_error = shown.astype(np.int16) - planes
                planes = shown
            else:
                planes = np.clip(planes + self.key_frame_error, 0, 255).astype(np.uint8)
            self._encode(self.stream, self.container, planes, self.index)
            self.index += 1

    def finish(self) -> None:
        self._encode(self.stream, self.container, None, self.index)
        self.container.close()

    def release(self) -> None:
        try:
            self.container.close()
        except Exception:  # an encoder that failed mid-file may refuse to close cleanly; the file is dropped anyway
            pass
