import torch

from gid_engine.spectral.motion import MotionTexture
from gid_engine.render.renderer import SplatRenderer, fill_holes, importance_metric, render_frames
from gid_engine.spectral.volume import SpectralVolume, at_rest_dc


def picture(h=24, w=32, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def moving_volume(h=24, w=32, amplitude_px=3.0, region=None):
    coeffs = torch.zeros(1, 16, 2, h, w, dtype=torch.complex64)
    coeffs[:, 1, 0] = 150 / 2 * amplitude_px
    if region is not None:
        coeffs = coeffs * region
    coeffs[:, 0] = at_rest_dc(coeffs)
    return SpectralVolume(coeffs)


def test_zero_motion_reproduces_the_picture_bit_for_bit():
    image = picture()
    motion = MotionTexture.from_volume(SpectralVolume(torch.zeros(1, 16, 2, 24, 32, dtype=torch.complex64)), 5, 30.0)
    frames = render_frames(SplatRenderer(), image, motion)
    assert frames.shape == (1, 5, 24, 32, 3)
    for t in range(5):
        assert torch.equal(frames[0, t], image[0].permute(1, 2, 0))


def test_first_frame_of_an_anchored_texture_is_the_picture():
    image = picture(seed=2)
    motion = MotionTexture.from_volume(moving_volume(), 12, 30.0, anchored=True, calm_start=True)
    frames = render_frames(SplatRenderer(), image, motion)
    assert torch.equal(frames[0, 0], image[0].permute(1, 2, 0))
    assert not torch.equal(frames[0, 3], frames[0, 0])


def test_uniform_shift_moves_the_picture_and_leaves_no_holes():
    image = picture(seed=1)
    coeffs = torch.zeros(1, 16, 2, 24, 32, dtype=torch.complex64)
    motion = MotionTexture.from_volume(moving_volume(), 150, 30.0, loop=False)
    fields = motion.fields(0, 150)
    t = int(fields[:, 0, 0].mean(dim=(1, 2)).argmax())  # frame of the largest shift to the right
    shift = float(fields[t, 0, 0, 0, 0])
    frames = render_frames(SplatRenderer(), image, motion)
    frame = frames[0, t]
    assert torch.isfinite(frame).all() and (frame.sum(-1) > 0).all()
    integer = round(shift)
    if abs(shift - integer) < 1e-3:
        assert torch.allclose(frame[:, 5 + integer:20], image[0].permute(1, 2, 0)[:, 5:20 - integer], atol=1e-5)


def test_stretch_has_no_cracks():
    h, w = 20, 40
    image = torch.ones(1, 3, h, w) * torch.linspace(0, 1, w).view(1, 1, 1, w)
    coeffs = torch.zeros(1, 16, 2, h, w, dtype=torch.complex64)
    ramp = torch.linspace(0, 6, w).view(1, 1, w)  # right side moves up to 6 px: a stretched region
    coeffs[:, 1, 0] = 150 / 2 * ramp
    coeffs[:, 0] = at_rest_dc(coeffs)
    motion = MotionTexture.from_volume(SpectralVolume(coeffs), 30, 30.0)
    frames = render_frames(SplatRenderer(), image, motion)
    # rows stay monotone inside the picture (no dark cracks where the motion stretches it); the right
    # border, uncovered whenever the motion pulls the picture left, is filled and checked separately
    # (the ramp swings up to 12 px, so the 13 right-most columns can be uncovered)
    diffs = frames[0, :, :, 1:w - 13, 0] - frames[0, :, :, :w - 14, 0]
    assert diffs.min() > -0.02
    border = frames[0, :, :, w - 13:, 0]
    assert torch.isfinite(border).all() and border.min() > 0.3 and border.max() <= 1.0


def test_fill_holes_takes_surrounding_colour_and_keeps_covered_pixels():
    values = torch.zeros(1, 3, 9, 9)
    values[..., :, :] = 0.5
    coverage = torch.ones(1, 1, 9, 9)
    coverage[..., 3:6, 3:6] = 0
    values[..., 3:6, 3:6] = 0
    filled = fill_holes(values, coverage)
    assert torch.allclose(filled[..., 3:6, 3:6], torch.full((1, 3, 3, 3), 0.5), atol=1e-5)
    assert torch.equal(filled[..., 0, 0], values[..., 0, 0])


def test_metric_is_resolution_independent():
    small = MotionTexture.from_volume(moving_volume(24, 32, 1.0), 30, 30.0)
    large = MotionTexture.from_volume(moving_volume(96, 128, 4.0), 30, 30.0)  # same motion on a 4x grid
    assert torch.allclose(importance_metric(small).mean(), importance_metric(large).mean(), rtol=1e-3)


def test_progress_is_reported_and_can_cancel():
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done >= 4:
            raise KeyboardInterrupt("cancelled")

    motion = MotionTexture.from_volume(moving_volume(), 10, 30.0)
    import gid_engine.render.renderer as render
    old = render.CHUNK_PIXELS
    render.CHUNK_PIXELS = 24 * 32 * 2  # two frames a chunk
    try:
        try:
            render_frames(SplatRenderer(), picture(), motion, progress=progress)
            raise AssertionError("cancel did not stop rendering")
        except KeyboardInterrupt:
            pass
    finally:
        render.CHUNK_PIXELS = old
    assert seen == [(2, 10), (4, 10)]
