import math

import pytest
import torch

from gid_engine.loops.loop import crossfade_loop, make_loop, resample_loop, rotate_to_picture, seam_ratio


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
    assert torch.equal(resample_loop(clip, 36), clip.repeat(3, 1, 1, 1))
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
