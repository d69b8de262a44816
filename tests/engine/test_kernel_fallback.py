"""A fused kernel that fails on first use (compile or launch) falls back to torch with one warning."""
import warnings

import pytest
import torch

from gid_engine.render import splat
from gid_engine.render.kernels import cpu as cpu_kernel
from gid_engine.render.kernels import cpu_render
from gid_engine.render.kernels import cuda as cuda_kernel
from gid_engine.render.kernels import fallback
from gid_engine.render.renderer import SplatRenderer
from gid_engine.render.splat import softmax_splat, torch_softmax_splat


@pytest.fixture(autouse=True)
def fresh_failures():
    fallback.reset()
    yield
    fallback.reset()


def operator_inputs(n=3, h=12, w=16):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(1, 3, h, w, generator=g), torch.randn(n, 2, h, w, generator=g) * 2,
            torch.rand(1, 1, h, w, generator=g))


def failing(message, calls):
    def kernel(*args, **kwargs):
        calls.append(1)
        raise RuntimeError(message)
    return kernel


def fallback_warnings(caught):
    return [w for w in caught if issubclass(w.category, fallback.FusedKernelFallback)]


def test_simulated_triton_compile_failure_renders_through_torch_with_one_warning(monkeypatch):
    # As on a GPU machine: the dispatcher picks Triton, which imports but cannot compile.
    calls = []
    monkeypatch.setattr(splat, "pick_backend", lambda backend, *tensors: "triton" if backend == "auto" else backend)
    monkeypatch.setattr(cuda_kernel, "softmax_splat", failing("CompilationError: no C compiler found", calls))
    features, flow, metric = operator_inputs()
    expected = torch_softmax_splat(features, flow, metric)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = softmax_splat(features, flow, metric)
        second = softmax_splat(features, flow, metric)
    for result in (first, second):
        assert torch.equal(result[0], expected[0]) and torch.equal(result[1], expected[1])
    raised = fallback_warnings(caught)
    assert len(raised) == 1
    assert "triton" in str(raised[0].message) and "no C compiler found" in str(raised[0].message)
    assert len(calls) == 1  # not tried again once it failed
    assert fallback.failure("triton").startswith("RuntimeError: CompilationError")


def test_numba_operator_failure_falls_back(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_kernel, "available", lambda: True)
    monkeypatch.setattr(cpu_kernel, "softmax_splat", failing("TypingError: cannot compile", calls))
    features, flow, metric = operator_inputs()
    with pytest.warns(fallback.FusedKernelFallback, match="numba kernel failed .*cannot compile"):
        result = softmax_splat(features, flow, metric)
    assert torch.equal(result[0], torch_softmax_splat(features, flow, metric)[0])


def test_forced_kernel_failure_stays_an_error(monkeypatch):
    monkeypatch.setattr(splat, "pick_backend", lambda backend, *tensors: backend)
    monkeypatch.setattr(cuda_kernel, "softmax_splat", failing("launch failed", []))
    with pytest.raises(RuntimeError, match="launch failed"):
        softmax_splat(*operator_inputs(), backend="triton")
    assert fallback.failure("triton") is None


def test_out_of_memory_is_not_taken_for_a_kernel_failure(monkeypatch):
    def out_of_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(splat, "pick_backend", lambda backend, *tensors: "triton")
    monkeypatch.setattr(cuda_kernel, "softmax_splat", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        softmax_splat(*operator_inputs())
    assert fallback.failure("triton") is None


def test_fused_renderer_failure_renders_the_torch_pipeline(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_kernel, "available", lambda: True)
    monkeypatch.setattr(cpu_render, "render_frames", failing("numba launch failed", calls))
    monkeypatch.setattr(cpu_kernel, "softmax_splat", failing("numba launch failed", []))
    monkeypatch.setattr(cpu_kernel, "moving_extent", lambda flow, still: float(flow.abs().amax()))
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 16, 20, generator=g)
    fields = torch.randn(4, 1, 2, 16, 20, generator=g)
    metric = torch.rand(1, 1, 16, 20, generator=g)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = SplatRenderer().render_chunk(image, fields, metric)
    expected = SplatRenderer(backend="torch").render_chunk(image, fields, metric)
    assert torch.equal(frames, expected)
    kernels = sorted(str(w.message).split(" kernel")[0] for w in fallback_warnings(caught))
    assert kernels == ["GID: the fused numba", "GID: the fused numba renderer"]
    assert len(calls) == 1
