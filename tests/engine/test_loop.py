import math

import pytest
import torch

from gid_engine.loops import loop
from gid_engine.loops.loop import (LIMITS, crossfade_loop, loop_output_bytes, make_loop, resample_loop, rotate_to_picture,
                                   seam_ratio)
from gid_engine.memory import RequestTooLarge


def periodic_clip(n=24, h=8, w=10):
    t = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    x = torch.linspace(0, 1, w).view(1, 1, w, 1)
    return 0.5 + 0.4 * torch.sin(2 * math.pi * (t / n + x)).expand(n, h, w, 3)


def drifting_clip(n=30, h=8, w=10):
    t = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    return (t / n).expand(n, h, w, 3).clone()


def test_periodic_clip_already_loops_and_is_left_alone():
    clip = periodic_clip()
    assert seam_ratio(clip) < 1.2
    out, report = make_loop(clip)
    assert torch.equal(out, clip) and report["crossfade_frames"] == 0


def test_crossfade_makes_a_drifting_clip_loop():
    clip = drifting_clip()
    assert seam_ratio(clip) > 10
    out, report = make_loop(clip)
    assert report["crossfade_frames"] == 7 and out.shape[0] == 23
    assert report["seam_ratio_after"] <= 1.5


def test_resample_and_repeat():
    clip = periodic_clip(12)
    slower = resample_loop(clip, 36)  # one loop, three times as long: every third frame is an input frame
    assert slower.shape[0] == 36 and torch.equal(slower[::3], clip)
    longer = resample_loop(clip, 18)
    assert longer.shape[0] == 18 and seam_ratio(longer) < 1.5
    out, report = make_loop(clip, repeats=3)
    assert out.shape[0] == 36 and report["loop_frames"] == 12


def test_start_on_picture():
    clip = periodic_clip(12)
    rotated, shift = rotate_to_picture(clip, clip[5])
    assert shift == 5 and torch.equal(rotated[0], clip[5])
    with pytest.raises(ValueError):
        rotate_to_picture(clip, clip[0, :4])


def test_bad_loops():
    with pytest.raises(ValueError):
        make_loop(periodic_clip(1))
    with pytest.raises(ValueError):
        crossfade_loop(drifting_clip(5), 3)


@pytest.mark.parametrize("count", [8, 9, 12, 6, 3])
def test_frames_per_loop_always_retimes_one_loop(count):
    clip = periodic_clip(4)
    out = resample_loop(clip, count)
    assert out.shape[0] == count
    # Frame j shows loop time j * 4 / count: a 4-frame loop in 8 frames plays once, slower, never twice.
    for j in range(count):
        t = j * 4 / count
        lower, frac = int(t), t - int(t)
        want = clip[lower] * (1 - frac) + clip[(lower + 1) % 4] * frac
        assert torch.allclose(out[j], want, atol=1e-6), (count, j)
    if count == 8:
        assert torch.equal(out[::2], clip) and not torch.allclose(out[1], clip[1])


def test_chunked_loop_matches_a_single_chunk(monkeypatch):
    clip = drifting_clip(30)
    picture = clip[20]
    whole, whole_report = make_loop(clip, frames_per_loop=17, repeats=3, picture=picture)
    monkeypatch.setattr(loop, "CHUNK_BYTES", clip[0].numel() * 4 * 2)  # two frames a chunk
    chunked, chunked_report = make_loop(clip, frames_per_loop=17, repeats=3, picture=picture)
    assert torch.equal(whole, chunked) and whole_report == chunked_report
    assert whole.shape[0] == 51 and torch.equal(whole[:17], whole[17:34]) and torch.equal(whole[:17], whole[34:])
    assert whole_report["crossfade_frames"] == 7 and whole_report["loop_frames"] == 17


def test_crossfade_blends_the_tail_into_the_head():
    clip = drifting_clip(20)
    out = crossfade_loop(clip, 4)  # 16 frames; frame i < 4 fades frame 16 + i into frame i
    assert out.shape[0] == 16 and torch.equal(out[0], clip[16]) and torch.equal(out[4:], clip[4:16])
    for i in (1, 2, 3):
        assert torch.allclose(out[i], clip[16 + i] * (1 - i / 4) + clip[i] * (i / 4), atol=1e-6)


def test_memory_estimate_and_refusal_before_allocating():
    clip = periodic_clip(12)  # 8 x 10 x 3 float32: 960 bytes a frame
    frame = 8 * 10 * 3 * 4
    assert loop_output_bytes((8, 10, 3), 12, crossfade=0) == 6 * 12 * frame  # unchanged: only scratch
    assert loop_output_bytes((8, 10, 3), 12, frames_per_loop=36, repeats=2) == (72 + 6 * 36) * frame
    need = loop_output_bytes((8, 10, 3), 12, frames_per_loop=36, repeats=2)
    out, _ = make_loop(clip, frames_per_loop=36, repeats=2, budget=lambda asked, device: need)
    assert out.shape[0] == 72
    with pytest.raises(RequestTooLarge, match="needs about .* GB but only .* GB are free on cpu"):
        make_loop(clip, frames_per_loop=36, repeats=2, budget=lambda asked, device: need - 1)
    # Against the machine's free memory: a billion frames is refused at once, nothing allocated.
    with pytest.raises(RequestTooLarge, match="frames_per_loop or repeats"):
        make_loop(clip, frames_per_loop=LIMITS["frames_per_loop"].maximum, repeats=LIMITS["repeats"].maximum)
    with pytest.raises(ValueError, match="frames_per_loop: 1000000000 is out of range"):  # beyond the limits
        make_loop(clip, frames_per_loop=10 ** 9)


@pytest.mark.parametrize("key, value, match", [
    ("crossfade", -7, "crossfade_frames: -7 is out of range"), ("crossfade", 6, "crossfade: 6 frames need a clip of at least 13"),
    ("frames_per_loop", -1, "frames_per_loop: -1 is out of range"), ("repeats", 0, "repeats: 0 is out of range"),
    ("repeats", 1.5, "repeats: expected a whole number"), ("frames_per_loop", float("nan"), "frames_per_loop"),
])
def test_bad_loop_options_name_the_input(key, value, match):
    with pytest.raises(ValueError, match=match):
        make_loop(periodic_clip(12), **{key: value})
