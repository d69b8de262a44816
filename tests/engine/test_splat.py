import math

import pytest
import torch

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


@pytest.mark.parametrize("case", ["random", "huge_metric", "leaves_frame", "zero_motion", "channels"])
def test_operator_matches_the_definition(case):
    g = torch.Generator().manual_seed(len(case))
    n, c, h, w = 2, 3, 7, 9
    if case == "channels":
        c = 5
    features = torch.rand(n, c, h, w, generator=g)
    flow = (torch.rand(n, 2, h, w, generator=g) - 0.5) * 4
    metric = torch.rand(n, 1, h, w, generator=g) * 3
    if case == "huge_metric":
        metric = torch.rand(n, 1, h, w, generator=g) * 1e4
    if case == "leaves_frame":
        flow = flow * 4 + torch.tensor([5.0, -3.0]).view(1, 2, 1, 1)
    if case == "zero_motion":
        flow = torch.zeros(n, 2, h, w)
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
