import numpy as np
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


import pytest  # noqa: E402

import gid_engine.render.renderer as render  # noqa: E402
from gid_engine.render.kernels import cpu as cpu_kernel  # noqa: E402
from gid_engine.render.renderer import render_chunks  # noqa: E402

needs_numba = pytest.mark.skipif(not cpu_kernel.available(), reason=f"numba unavailable: {cpu_kernel.IMPORT_ERROR}")


def wild_volume(h, w, amplitude_px, seed=0):
    """Smooth random motion in every band (x and y), `amplitude_px` at its largest."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 16 * 4, 3, 4, generator=g)
    fields = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    decay = torch.exp(-torch.arange(16) / 4.0).repeat_interleave(4).view(1, -1, 1, 1)
    return SpectralVolume.from_channels(fields * decay * (150 / 2 * amplitude_px / 3))


@needs_numba
@pytest.mark.parametrize("case", ["breeze", "large_motion", "two_pictures", "odd_size", "one_pixel", "huge_metric",
                                  "holes_in_some_frames"])
def test_fused_renderer_matches_the_torch_renderer(case):
    h, w, amplitude, batch = 24, 32, 2.0, 1
    if case == "large_motion":
        amplitude = 20.0  # most of the picture leaves the frame and comes back
    if case == "odd_size":
        h, w = 13, 7
    if case == "one_pixel":
        h, w = 1, 1
    if case == "two_pictures":
        batch = 2
    volume = wild_volume(h, w, amplitude)
    if batch > 1:
        volume = SpectralVolume(torch.cat([volume.coeffs, wild_volume(h, w, amplitude, seed=1).coeffs]))
    if case == "holes_in_some_frames":  # the motion only starts late in the clip: early frames have no holes
        volume = moving_volume(h, w, 4.0)
    motion = MotionTexture.from_volume(volume, 20, 30.0, anchored=case == "holes_in_some_frames")
    image = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(5))
    metric = importance_metric(motion) * (1e4 if case == "huge_metric" else 1)  # 1e4: the per-target shift
    fused = render_frames(SplatRenderer(), image, motion, metric=metric)
    exact = render_frames(SplatRenderer(backend="torch"), image.double(), motion, metric=metric)
    plain = render_frames(SplatRenderer(backend="torch"), image, motion, metric=metric)
    assert fused.dtype == torch.float32 and torch.isfinite(fused).all()
    # The float32 torch renderer rounds target positions; the fused one is closer to the exact result.
    assert (fused.double() - exact).abs().max() < 1e-5
    assert (fused - plain).abs().max() < 1e-3


@needs_numba
def test_fused_renderer_keeps_still_pictures_bit_exact():
    image = picture()
    motion = MotionTexture.from_volume(moving_volume(), 8, 30.0, anchored=True, calm_start=True)
    assert SplatRenderer().fused(image, motion.fields(0, 1)[:, :1])
    frames = render_frames(SplatRenderer(), image, motion)
    assert torch.equal(frames[0, 0], image[0].permute(1, 2, 0))
    still = MotionTexture.from_volume(SpectralVolume(torch.zeros(1, 16, 2, 24, 32, dtype=torch.complex64)), 3, 30.0)
    assert torch.equal(render_frames(SplatRenderer(), image, still)[0, 2], image[0].permute(1, 2, 0))


def test_torch_path_runs_without_numba(monkeypatch):
    image = picture(seed=3)
    motion = MotionTexture.from_volume(moving_volume(), 6, 30.0)
    want = render_frames(SplatRenderer(backend="torch"), image, motion)
    monkeypatch.setattr(cpu_kernel, "numba", None)  # as if numba could not be imported
    assert not SplatRenderer().fused(image, motion.fields(0, 1))
    assert torch.equal(render_frames(SplatRenderer(), image, motion), want)


def test_render_chunks_stream_what_render_frames_returns():
    image = picture(seed=4)
    motion = MotionTexture.from_volume(moving_volume(), 10, 30.0)
    old = render.CHUNK_PIXELS
    render.CHUNK_PIXELS = 24 * 32 * 5  # five frames, rounded to four a chunk (even chunks)
    try:
        chunks = list(render_chunks(SplatRenderer(), image, motion))
        whole = render_frames(SplatRenderer(), image, motion)
        out = torch.full((1, 10, 24, 32, 3), -1.0)
        assert render_frames(SplatRenderer(), image, motion, out=out) is out
    finally:
        render.CHUNK_PIXELS = old
    assert [start for start, _ in chunks] == [0, 4, 8]
    assert all(frames.shape == (1, min(4, 10 - start), 24, 32, 3) for start, frames in chunks)
    assert torch.equal(torch.cat([frames for _, frames in chunks], dim=1), whole)
    assert torch.equal(out, whole)
    with pytest.raises(ValueError, match="out: expected a tensor of shape"):
        render_frames(SplatRenderer(), image, motion, out=torch.empty(1, 9, 24, 32, 3))


def test_renderer_options_are_checked():
    with pytest.raises(ValueError, match="levels"):
        SplatRenderer(levels=0)
    with pytest.raises(ValueError, match="backend: unknown value 'fast'"):
        SplatRenderer(backend="fast")


def stretched_stripes(h=16, w=48, factor=1.8):
    """Vertical stripes, a band of which the flow magnifies `factor` times about its left edge (x0) and shifts the rest
    along: flow(x) = (factor - 1)(x - x0) for x0 <= x <= x1, constant beyond. Returns picture, flow, and the exact
    backward warp (the picture at s with s + flow(s) = q) of each target column."""
    x = torch.arange(w, dtype=torch.float64)
    colour = 0.5 + 0.4 * torch.sin(x * 1.3)
    image = colour.view(1, 1, 1, w).expand(1, 3, h, w).float().contiguous()
    x0, x1 = 10.0, 18.0
    fx = (factor - 1) * (x.clamp(x0, x1) - x0)
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0] = fx.float()
    # Backward map: inside the magnified band s = x0 + (q - x0) / factor; beyond it s = q - shift.
    q = x
    s = torch.where(q < x0, q, torch.where(q <= x0 + factor * (x1 - x0), x0 + (q - x0) / factor, q - fx[-1]))
    truth = torch.from_numpy(np.interp(s.numpy(), x.numpy(), colour.numpy()))
    return image, flow, truth, (int(x0) + 1, int(x0 + factor * (x1 - x0)))


@pytest.mark.parametrize("backend", ["torch", pytest.param("auto", marks=needs_numba)])
def test_a_stretched_surface_is_drawn_from_itself_not_from_the_background(backend):
    image, flow, truth, (lo, hi) = stretched_stripes()
    metric = flow.norm(dim=1, keepdim=True) * 0.5  # the stretched band is "in front": the old fill avoided it
    frame = SplatRenderer(backend=backend).render_chunk(image, flow[None], metric)[0, 0, 0]
    assert float((frame[:, lo:hi].double() - truth[lo:hi]).abs().max()) < 0.03
    # the splat alone leaves gaps there, and the background-preferring fill alone paints them wrong
    _, coverage = render.softmax_splat(image, flow, metric)
    assert float(coverage[0, 0, :, lo:hi].min()) < 0.25
    plain = render.fill_holes(*render.softmax_splat(torch.cat([image, metric], 1), flow, metric)[0].split([3, 1], 1)
                              [:1], coverage, None)
    assert float((plain[0, 0, :, lo:hi].double() - truth[lo:hi]).abs().max()) > 0.1


@pytest.mark.parametrize("backend", ["torch", pytest.param("auto", marks=needs_numba)])
def test_a_disocclusion_is_still_filled_from_what_lies_behind(backend, monkeypatch):
    h, w = 16, 32
    image = torch.full((1, 3, h, w), 0.2)
    image[..., 4:12, 8:16] = 0.9  # a bright square moving right over a still dark background
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0, 4:12, 8:16] = 6.0
    metric = flow.norm(dim=1, keepdim=True)
    frame = SplatRenderer(backend=backend).render_chunk(image, flow[None], metric)[0, 0]
    # the square, moved (where it lands on the background, softmax leaves exp(-6) of it)
    assert torch.allclose(frame[:, 5:11, 14:22], torch.full((3, 6, 8), 0.9), atol=0.01)
    assert float((frame[:, 5:11, 8:11] - 0.2).abs().max()) < 0.1  # the hole it leaves shows the background
    # ... exactly as the background-preferring fill draws it: the tear is no stretched surface
    monkeypatch.setattr(render, "draw_stretched_surface", lambda estimate, *_: estimate)
    fill_only = SplatRenderer(backend="torch").render_chunk(image, flow[None], metric)[0, 0]
    assert torch.allclose(frame[:, :, 6:14], fill_only[:, :, 6:14], atol=1e-5)


from test_splat import triton_interpreter  # noqa: E402,F401 (fixture: the Triton kernels under the interpreter)


def test_the_triton_renderer_draws_a_stretched_surface_as_the_torch_one(triton_interpreter):  # noqa: F811
    image, flow, truth, (lo, hi) = stretched_stripes()
    metric = flow.norm(dim=1, keepdim=True) * 0.5
    triton = SplatRenderer(backend="triton").render_chunk(image, flow[None], metric)[0, 0, 0]
    reference = SplatRenderer(backend="torch").render_chunk(image, flow[None], metric)[0, 0, 0]
    assert (triton - reference).abs().max() < 1e-5
    assert float((triton[:, lo:hi].double() - truth[lo:hi]).abs().max()) < 0.03


@needs_numba
def test_render_benchmark_times_the_renderer_before_the_redraw_in_the_same_run():
    """benchmarks/render.py loads the fused renderer of the revision before the stretched-surface redraw from git
    and reports today's renderer against it (where this checkout holds that revision), here on the built-in
    prior's loop of the sample."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "benchmarks/render.py", "--sizes", "64x36", "--frames", "4",
                             "--repeats", "1", "--motion", "sample", "--json"], cwd=root, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout.strip().splitlines()[-1])["results"][0]
    assert row["motion"] == "sample"
    has_revision = subprocess.run(["git", "-C", str(root), "cat-file", "-e", "5a397be^{commit}"],
                                  capture_output=True).returncode == 0
    if not has_revision:  # a shallow clone: the benchmark says so and times the rest
        assert "is not timed" in result.stdout
        return
    assert row["cpu_fps"]["renderer_before_redraw"] > 0
    assert row["renderer_vs_before_redraw"] == row["cpu_fps"]["renderer"] / row["cpu_fps"]["renderer_before_redraw"]
