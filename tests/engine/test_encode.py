"""Seamless loop files (gid_engine/loops/encode*.py), measured on the decoded files."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gid_engine import checks
from gid_engine.loops import encode
from gid_engine.loops.encode_figures import decode_loop, loop_figures, meets_figures, still_pixels

FPS = 24.0


def sway_loop(frames: int = 24, height: int = 96, width: int = 128) -> torch.Tensor:
    """A smooth textured picture whose right half carries a faint travelling wave (one cycle per loop, so every
    step, the wrap included, changes the same amount: under a grey level) and whose left half never changes:
    GID's kind of subtle motion."""
    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    texture = 0.5 + 0.25 * torch.sin(12 * x) * torch.cos(8 * y)
    out = []
    for t in range(frames):
        wave = 0.03 * torch.sin(16 * x + 10 * y + 2 * math.pi * t / frames) * (x > 0.5)
        luma = texture + wave
        out.append(torch.stack([luma, 0.6 * luma + 0.2 * y, 0.8 - 0.5 * luma], -1))
    return torch.stack(out).clamp(0, 1)


@pytest.fixture(scope="module")
def loop() -> torch.Tensor:
    return sway_loop()


@pytest.mark.parametrize("format", encode.FORMATS)
def test_each_format_writes_a_seamless_loop_at_default_settings(loop, tmp_path, format) -> None:
    path = encode.write_loop(loop, tmp_path / f"loop.{format}", FPS, chunk=5)
    decoded = decode_loop(path)
    assert decoded.shape == tuple(loop.shape)
    reference = encode.to_uint8(loop).numpy()
    figures = loop_figures(decoded, reference)
    assert figures["still_fraction"] > 0.2 and figures["median_step"] > 0.05
    assert figures["still_max_step"] <= 1, figures
    assert figures["wrap_ratio"] <= 1.25 and figures["largest_step_ratio"] <= 2.0, figures
    if format == "gif":
        assert figures["psnr_db"] > 25, figures  # 256 colours: the documented limit
    else:
        assert meets_figures(figures), figures
    assert not list(tmp_path.glob(".*partial"))


def test_mp4_is_h264_yuv420p_high_profile_fast_start_with_one_key_frame(loop, tmp_path) -> None:
    import av

    path = encode.write_loop(loop, tmp_path / "loop.mp4", FPS, metadata={"workflow": '{"nodes": []}', "prompt": "{}"})
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "moov must come first (fast start, plays while loading)"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.codec_context.profile == "High"
        assert container.metadata.get("workflow") == '{"nodes": []}' and container.metadata.get("prompt") == "{}"
        assert float(stream.average_rate) == pytest.approx(FPS)
        key_frames = [p.is_keyframe for p in container.demux(stream) if p.size]
    assert key_frames[0] and sum(key_frames) == 1


def test_webm_is_vp9_and_carries_the_workflow(loop, tmp_path) -> None:
    import av

    path = encode.write_loop(loop, tmp_path / "loop.webm", FPS, metadata={"workflow": '{"nodes": []}'})
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
        assert '{"nodes": []}' in {v for k, v in container.metadata.items() if k.lower() == "workflow"}


def test_webp_carries_the_workflow_like_core_savers_and_keeps_exact_time(loop, tmp_path) -> None:
    from PIL import Image

    path = encode.write_loop(loop, tmp_path / "loop.webp", 30.0, metadata={"prompt": "{}", "workflow": "{}"})
    with Image.open(path) as im:
        exif = im.getexif()
        assert exif[0x0110] == "prompt:{}" and exif[0x010F] == "workflow:{}"
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()
            durations.append(im.info["duration"])
    assert sum(durations) == pytest.approx(len(loop) * 1000 / 30.0, abs=1)  # whole milliseconds, total exact


def test_quality_100_webp_is_exact_and_lower_quality_makes_smaller_files(loop, tmp_path) -> None:
    exact = encode.write_loop(loop, tmp_path / "exact.webp", FPS, quality=100)
    assert np.array_equal(decode_loop(exact), encode.to_uint8(loop).numpy())
    small = encode.write_loop(loop, tmp_path / "small.mp4", FPS, quality=40)
    default = encode.write_loop(loop, tmp_path / "default.mp4", FPS)
    assert small.stat().st_size < default.stat().st_size


def test_gif_has_one_global_palette_and_refuses_rates_browsers_slow_down(loop, tmp_path) -> None:
    path = encode.write_loop(loop, tmp_path / "loop.gif", FPS)
    data = path.read_bytes()
    assert data[10] & 0x80, "global colour table"
    # every image descriptor: no local colour table
    descriptors = [i for i in range(len(data) - 10) if data[i] == 0x2C and data[i - 8:i - 5] == b"\x21\xf9\x04"]
    assert len(descriptors) == len(loop) and all(not data[i + 9] & 0x80 for i in descriptors)
    with pytest.raises(ValueError, match=r"^fps: 60 is too fast for GIF"):
        encode.open_loop_writer(tmp_path / "fast.gif", 60)


def test_streaming_writes_chunk_by_chunk(loop, tmp_path) -> None:
    with encode.open_loop_writer(tmp_path / "loop.webp", FPS, quality=100) as writer:
        for start in range(0, len(loop), 7):
            writer.write(loop[start:start + 7])
        assert not (tmp_path / "loop.webp").exists()  # only complete files appear
    assert writer.frames_written == len(loop)
    assert np.array_equal(decode_loop(tmp_path / "loop.webp"), encode.to_uint8(loop).numpy())


@pytest.mark.parametrize("name, call, message", [
    ("unknown suffix", lambda p: encode.open_loop_writer(p / "x.avi", FPS), r"^output: unknown value 'avi'; allowed: mp4"),
    ("unknown format", lambda p: encode.open_loop_writer(p / "x", FPS, format="mov"), r"^format: unknown value 'mov'"),
    ("fps 0", lambda p: encode.open_loop_writer(p / "x.mp4", 0), r"^fps: 0.0 is out of range; allowed: >= 0.1 and <= 240"),
    ("fps < 0", lambda p: encode.open_loop_writer(p / "x.webp", -5), r"^fps: -5.0 is out of range"),
    ("fps NaN", lambda p: encode.open_loop_writer(p / "x.gif", float("nan")), r"^fps: expected a finite number, got nan"),
    ("quality", lambda p: encode.open_loop_writer(p / "x.mp4", FPS, quality=101), r"^quality: 101 is out of range"),
    ("no frames", lambda p: encode.write_loop(torch.zeros(0, 8, 8, 3), p / "x.mp4", FPS),
     r"^images: a loop needs at least 2 frames, got 0"),
    ("one frame", lambda p: encode.write_loop(torch.zeros(1, 8, 8, 3), p / "x.webp", FPS),
     r"^images: a loop needs at least 2 frames, got 1"),
    ("odd size", lambda p: encode.write_loop(torch.zeros(4, 9, 8, 3), p / "x.mp4", FPS),
     r"^images: 8x9 frames; MP4 \(YUV 4:2:0\) needs an even width and height"),
    ("NaN pixels", lambda p: encode.write_loop(torch.full((3, 8, 8, 3), float("nan")), p / "x.gif", FPS),
     r"^images: contains 576 NaN"),
])
def test_bad_inputs_are_clear_errors_and_leave_no_file(tmp_path, name, call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call(tmp_path)
    assert not [p for p in tmp_path.iterdir()], name


@pytest.mark.parametrize("prefix, message", [
    ("../outside", r"^filename_prefix: '../outside' climbs out of the output folder"),
    ("gid/../../x", r"^filename_prefix: 'gid/../../x' climbs out"),
    ("/tmp/x", r"^filename_prefix: '/tmp/x' is an absolute path"),
    ("C:\\x", r"^filename_prefix: 'C:\\\\x' is an absolute path"),
    ("", r"^filename_prefix: expected a file name prefix"),
])
def test_prefixes_that_leave_the_output_folder_are_refused(prefix, message) -> None:
    with pytest.raises(ValueError, match=message):
        checks.relative_path("filename_prefix", prefix)
    assert checks.relative_path("filename_prefix", "gid/loop") == "gid/loop"


def test_cancel_during_an_encode_leaves_no_file(loop, tmp_path) -> None:
    class Cancelled(Exception):
        pass

    def progress(done, total):
        if done >= 10:
            raise Cancelled

    with pytest.raises(Cancelled):
        encode.write_loop(loop, tmp_path / "loop.mp4", FPS, chunk=5, progress=progress)
    assert not list(tmp_path.iterdir())


def test_still_pixels_keep_a_margin_from_motion() -> None:
    frames = np.zeros((3, 40, 40, 3), np.uint8)
    frames[1, 20, 20] = 9
    still = still_pixels(frames, margin=8)
    assert not still[12:29, 12:29].any() and still[:12].all() and still[29:].all()
