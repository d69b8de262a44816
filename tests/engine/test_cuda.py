"""The CUDA paths, run the day a GPU is present (skipped without one): the Triton kernel against torch, the
renderers and the motion model on the GPU against the CPU, a simulated Triton failure, the CLI and benchmark.

    python -m pytest tests/engine/test_cuda.py      (about a minute on one GPU, most of it Triton compiling)
"""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from gid_engine.render.kernels import cuda as cuda_kernel
from gid_engine.render.kernels import fallback
from gid_engine.render.learned import LearnedRenderer, new_renderer_net
from gid_engine.render.renderer import SplatRenderer, render_frames
from gid_engine.render.splat import pick_backend, softmax_splat, torch_softmax_splat
from gid_engine.sources.ldm.model import CONFIGS, GIDMotionModel
from gid_engine.sources.prior import ProceduralPrior
from gid_engine.spectral.motion import MotionTexture
from gid_engine.spectral.normalization import FrequencyNormalization

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ROOT = Path(__file__).resolve().parents[2]
GPU = torch.device("cuda")


@pytest.fixture(autouse=True)
def fresh_failures():
    fallback.reset()
    yield
    fallback.reset()


def operator_inputs(n=4, h=40, w=56, spread=1.0, device=GPU):
    g = torch.Generator().manual_seed(0)
    tensors = (torch.rand(1, 4, h, w, generator=g), torch.randn(n, 2, h, w, generator=g) * 3,
               torch.rand(1, 1, h, w, generator=g) * spread)
    return tuple(t.to(device) for t in tensors)


def picture_and_motion(h=48, w=64, frames=8):
    picture = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(2))
    volume = ProceduralPrior().predict(picture, seed=3)
    return picture, MotionTexture.from_volume(volume, frames, 30.0)


def test_auto_picks_triton_on_cuda():
    assert cuda_kernel.available("cuda"), cuda_kernel.IMPORT_ERROR
    assert pick_backend("auto", *operator_inputs()) == "triton"


@pytest.mark.parametrize("spread", [1.0, 500.0])  # one shift per frame; per-target shift
def test_triton_operator_matches_torch(spread):
    features, flow, metric = operator_inputs(spread=spread)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fallback.FusedKernelFallback)  # a fallback here would hide the kernel
        fused, coverage = softmax_splat(features, flow, metric, backend="triton")
    reference, reference_coverage = torch_softmax_splat(features, flow, metric)
    assert torch.allclose(fused, reference, atol=1e-5)
    assert torch.allclose(coverage, reference_coverage, atol=1e-5)


def test_simulated_triton_failure_on_the_gpu_renders_through_torch(monkeypatch):
    def compile_failure(*args):
        raise RuntimeError("simulated: PTX assembly failed")
    monkeypatch.setattr(cuda_kernel, "softmax_splat", compile_failure)
    features, flow, metric = operator_inputs()
    with pytest.warns(fallback.FusedKernelFallback, match="triton kernel failed .*PTX assembly failed"):
        result = softmax_splat(features, flow, metric)
    assert torch.equal(result[0], torch_softmax_splat(features, flow, metric)[0])


def test_splat_renderer_on_the_gpu_matches_the_cpu():
    picture, motion = picture_and_motion()
    on_cpu = render_frames(SplatRenderer(backend="torch"), picture, motion)
    on_gpu = render_frames(SplatRenderer(), picture.to(GPU), motion.replace(volume=motion.volume.to(GPU)),
                           out_device=GPU)
    assert on_gpu.device.type == "cuda" and not fallback.failures()
    assert (on_gpu.cpu() - on_cpu).abs().mean() < 1e-4
    assert (on_gpu.cpu() - on_cpu).abs().max() < 1e-2


def test_learned_renderer_on_the_gpu_matches_the_cpu():
    torch.manual_seed(0)
    renderer = LearnedRenderer(new_renderer_net("tiny"))
    picture, motion = picture_and_motion(32, 32, 4)
    on_cpu = render_frames(renderer, picture, motion)
    on_gpu = render_frames(renderer.to(GPU), picture.to(GPU), motion.replace(volume=motion.volume.to(GPU)))
    assert renderer.device.type == "cuda"
    assert torch.allclose(on_gpu, on_cpu, atol=1e-3)


def test_motion_model_predicts_on_the_gpu():
    config = CONFIGS["tiny"]
    torch.manual_seed(0)
    model = GIDMotionModel(config, FrequencyNormalization.default(config.num_bins)).eval().to(GPU)
    volume = model.predict(torch.rand(1, 3, 40, 48, device=GPU), seed=1, sampling={"steps": 3})
    assert volume.coeffs.device.type == "cuda"
    assert volume.coeffs.shape[-2:] == (40, 48) and bool(torch.isfinite(volume.coeffs).all())
    fp16 = model.to(dtype=torch.float16)  # as ComfyUI loads it on GPUs that prefer half precision
    assert bool(torch.isfinite(fp16.predict(torch.rand(1, 3, 40, 48, device=GPU), sampling={"steps": 3}).coeffs).all())


def test_cli_animates_on_cuda(tmp_path):
    picture = tmp_path / "p.png"
    Image.open(ROOT / "samples" / "dandelion.jpg").resize((96, 54)).save(picture)
    out = tmp_path / "loop.webp"
    result = subprocess.run([sys.executable, "-m", "gid_engine", "animate", str(picture), "-o", str(out),
                             "--frames", "8", "--device", "cuda"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "kernel failed" not in result.stderr
    with Image.open(out) as im:
        assert im.n_frames == 8


def test_render_benchmark_runs_on_cuda():
    result = subprocess.run([sys.executable, "benchmarks/render.py", "--device", "cuda", "--sizes", "128x72",
                             "--frames", "4", "--repeats", "1", "--json"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["device"] == "cuda" and report["kernel"] == "triton" and report["kernel_failures"] == {}
