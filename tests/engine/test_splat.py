import importlib
import math

import pytest
import torch

from gid_engine.render import splat
from gid_engine.render.kernels import cpu as cpu_kernel
from gid_engine.render.kernels import cuda as cuda_kernel
from gid_engine.render.splat import softmax_splat


def reference_splat(features, flow, metric):
    """The definition, one source pixel and one corner at a time, in float64."""
    n, c, h, w = features.shape
    num = torch.zeros(n, c, h, w, dtype=torch.float64)
    den = torch.zeros(n, h, w, dtype=torch.float64)
    cov = torch.zeros(n, h, w, dtype=torch.float64)
    zmax = torch.full((n, h, w), -math.inf, dtype=torch.float64)
    contributions = []
    for b in range(n):
        for y in range(h):
            for x in range(w):
                tx = x + float(flow[b, 0, y, x])
                ty = y + float(flow[b, 1, y, x])
                x0, y0 = math.floor(tx), math.floor(ty)
                for qx in (x0, x0 + 1):
                    for qy in (y0, y0 + 1):
                        bw = (1 - abs(tx - qx)) * (1 - abs(ty - qy))
                        if bw <= 0 or not (0 <= qx < w and 0 <= qy < h):
                            continue
                        z = float(metric[b if metric.shape[0] > 1 else 0, 0, y, x])
                        contributions.append((b, qy, qx, bw, z, features[b, :, y, x].double()))
                        zmax[b, qy, qx] = max(zmax[b, qy, qx], z)
    for b, qy, qx, bw, z, f in contributions:
        wgt = bw * math.exp(z - zmax[b, qy, qx])
        num[b, :, qy, qx] += wgt * f
        den[b, qy, qx] += wgt
        cov[b, qy, qx] += bw
    out = torch.where(den[:, None] > 0, num / den[:, None].clamp(min=1e-300), torch.zeros(()))
    return out, cov[:, None]


@pytest.mark.parametrize("case", ["random", "huge_metric", "leaves_frame", "zero_motion", "channels5"])
def test_operator_matches_the_definition(case):
    features, flow, metric = adversarial_case(case, seed=len(case))
    n, _, h, w = features.shape
    out, cov = softmax_splat(features, flow, metric)
    want, want_cov = reference_splat(features, flow, metric)
    assert torch.isfinite(out).all()
    assert (out.double() - want).abs().max() < 1e-5
    assert (cov.double() - want_cov).abs().max() < 1e-5
    if case == "zero_motion":
        assert torch.equal(out, features)
        assert torch.equal(cov, torch.ones(n, 1, h, w))


def test_metric_broadcast_and_front_wins():
    features = torch.zeros(1, 1, 1, 4)
    features[0, 0, 0, 0] = 1.0  # pixel 0 moves onto pixel 2, where a still pixel with value 0 sits
    flow = torch.zeros(1, 2, 1, 4)
    flow[0, 0, 0, 0] = 2.0
    front = torch.tensor([[[[20.0, 0.0, 0.0, 0.0]]]])
    out, cov = softmax_splat(features, flow, front)
    assert out[0, 0, 0, 2] > 0.999999  # the moving (front) pixel wins
    assert cov[0, 0, 0, 0] == 0 and cov[0, 0, 0, 2] == 2  # a hole where it left, a double cover where it lands
    out_avg, _ = softmax_splat(features, flow, torch.zeros(1, 1, 1, 4))
    assert torch.isclose(out_avg[0, 0, 0, 2], torch.tensor(0.5))  # equal metrics average


def test_shape_errors():
    with pytest.raises(ValueError, match="flow"):
        softmax_splat(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="metric"):
        softmax_splat(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 3))


def adversarial_case(case, seed=0):
    """features, flow, metric for the fused kernels' equivalence tests."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = 2, 3, 7, 9
    if case.startswith("channels"):
        c = int(case[len("channels"):])
    if case == "one_by_one":
        h = w = 1
    if case == "odd_sizes":
        h, w = 5, 13
    features = torch.rand(n, c, h, w, generator=g)
    flow = (torch.rand(n, 2, h, w, generator=g) - 0.5) * 4
    metric = torch.rand(n, 1, h, w, generator=g) * 3
    if case == "huge_metric":
        metric = torch.rand(n, 1, h, w, generator=g) * 1e4
    if case == "large_flow":
        flow = (torch.rand(n, 2, h, w, generator=g) - 0.5) * 60
    if case == "leaves_frame":
        flow = flow * 4 + torch.tensor([5.0, -3.0]).view(1, 2, 1, 1)
    if case == "empty_frames":  # everything lands outside: no coverage anywhere
        flow = torch.full((n, 2, h, w), 100.0)
    if case == "zero_motion":
        flow = torch.zeros(n, 2, h, w)
    if case == "one_pixel":  # every source lands exactly on pixel (3, 4), the huge metrics included
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        flow = torch.stack([4 - xs, 3 - ys]).float().expand(n, 2, h, w).clone()
        metric = torch.rand(n, 1, h, w, generator=g) * 1e4
    if case == "shared":  # one picture and metric under many flows
        features, metric = features[:1], metric[:1]
    return features, flow, metric


CASES = ["random", "huge_metric", "large_flow", "leaves_frame", "empty_frames", "zero_motion", "one_pixel",
         "shared", "one_by_one", "odd_sizes", "channels1", "channels5", "channels8"]


@pytest.fixture
def triton_interpreter(monkeypatch):
    """The Triton kernels under TRITON_INTERPRET=1 (CPU tensors); skips where Triton cannot be imported."""
    pytest.importorskip("triton", reason="triton is not installed (it ships with CUDA builds of torch)")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    from gid_engine.render.kernels import triton_splat
    monkeypatch.setattr(cuda_kernel, "_kernels", importlib.reload(triton_splat))  # kernels built interpreted
    yield
    monkeypatch.delenv("TRITON_INTERPRET")
    importlib.reload(triton_splat)  # later CUDA runs get compiled kernels again


def check_against_definition(backend, case):
    features, flow, metric = adversarial_case(case)
    out, cov = softmax_splat(features, flow, metric, backend=backend)
    full = features.expand(flow.shape[0], -1, -1, -1)
    want, want_cov = reference_splat(full, flow, metric)
    assert out.shape == want.shape and cov.shape == want_cov.shape
    assert torch.isfinite(out).all() and torch.isfinite(cov).all()
    assert (out.double() - want).abs().max() < 1e-5
    assert (cov.double() - want_cov).abs().max() < 1e-5
    if case == "zero_motion":
        assert torch.equal(out, features) and torch.equal(cov, torch.ones_like(cov))
    if case == "empty_frames":
        assert torch.equal(out, torch.zeros_like(out)) and torch.equal(cov, torch.zeros_like(cov))


@pytest.mark.skipif(not cpu_kernel.available(), reason=f"numba unavailable: {cpu_kernel.IMPORT_ERROR}")
@pytest.mark.parametrize("case", CASES)
def test_numba_kernel_matches_the_definition(case):
    check_against_definition("numba", case)


@pytest.mark.parametrize("case", CASES)
def test_torch_fallback_matches_the_definition(case):
    check_against_definition("torch", case)


@pytest.mark.parametrize("case", ["random", "huge_metric", "large_flow", "empty_frames", "zero_motion", "one_pixel",
                                  "shared", "one_by_one", "odd_sizes", "channels1", "channels5"])
def test_triton_kernel_matches_the_definition_under_the_interpreter(triton_interpreter, case):
    check_against_definition("triton", case)


@pytest.mark.skipif(not cpu_kernel.available(), reason=f"numba unavailable: {cpu_kernel.IMPORT_ERROR}")
def test_numba_kernel_matches_the_torch_operator_on_a_large_random_frame():
    g = torch.Generator().manual_seed(3)
    features = torch.rand(3, 4, 64, 96, generator=g)
    flow = torch.randn(3, 2, 64, 96, generator=g) * 6
    metric = torch.rand(3, 1, 64, 96, generator=g) * 10
    fused, fused_cov = softmax_splat(features, flow, metric, backend="numba")
    exact, exact_cov = splat.torch_softmax_splat(features.double(), flow.double(), metric.double())
    assert (fused.double() - exact).abs().max() < 1e-5 and (fused_cov.double() - exact_cov).abs().max() < 1e-5
    plain, _ = softmax_splat(features, flow, metric, backend="torch")
    # The float32 torch operator rounds target positions (x + flow): at barely covered pixels that moves
    # its result by more than 1e-5 from the exact one; the kernel adds them in float64.
    assert (fused.double() - exact).abs().max() <= (plain.double() - exact).abs().max()


def test_auto_falls_back_to_torch(monkeypatch):
    features, flow, metric = adversarial_case("random")
    want, want_cov = softmax_splat(features, flow, metric, backend="torch")
    monkeypatch.setattr(cpu_kernel, "numba", None)  # as if numba could not be imported
    assert splat.pick_backend("auto", features, flow, metric) == "torch"
    out, cov = softmax_splat(features, flow, metric)
    assert torch.equal(out, want) and torch.equal(cov, want_cov)
    with pytest.raises(ValueError, match="backend: .numba. cannot run on cpu torch.float32"):
        softmax_splat(features, flow, metric, backend="numba")


def test_gradients_take_the_differentiable_torch_path():
    features, flow, metric = adversarial_case("random")
    features.requires_grad_(True)
    assert splat.pick_backend("auto", features, flow, metric) == "torch"
    out, _ = softmax_splat(features, flow, metric)
    out.sum().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    with torch.no_grad():
        expected = "numba" if cpu_kernel.available() else "torch"
        assert splat.pick_backend("auto", features, flow, metric) == expected


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend: unknown value 'cuda'"):
        softmax_splat(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4), backend="cuda")
