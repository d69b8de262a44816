"""The learned feature-pyramid renderer: Renderer protocol, checkpoints (validated, never pickles), training phase."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmarks.learned_model import build_dataset
from gid_engine.render.learned import LearnedRenderer, load_renderer, new_renderer_net, save_renderer
from gid_engine.render.renderer import SplatRenderer, importance_metric, render_frames
from gid_engine.spectral.motion import MotionTexture
from gid_engine.spectral.volume import SpectralVolume
from gid_engine.training.dataset import PairDataset
from gid_engine.training.renderer import RendererTriples, triple
from gid_engine.training.train import RENDERER_FILE, TRAIN_CONFIGS, Trainer


def swaying_volume(h: int, w: int, amplitude: float = 2.0) -> SpectralVolume:
    coeffs = torch.zeros(1, 4, 2, h, w, dtype=torch.complex64)
    coeffs[0, 1, 0, h // 4:3 * h // 4, w // 4:3 * w // 4] = amplitude * 24 / 2  # 1 cycle per window, x only
    return SpectralVolume(coeffs, fps=24.0, period=24)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    net = new_renderer_net("tiny")
    with torch.no_grad():  # a non-trivial decoder, so round trips are tested on real outputs
        net.decoder.out.weight.normal_(std=0.01)
    return save_renderer(net, tmp_path_factory.mktemp("renderer") / "r.safetensors")


def test_untrained_renderer_draws_the_picture_where_nothing_moves() -> None:
    picture = torch.rand(1, 3, 24, 32)
    renderer = LearnedRenderer(new_renderer_net("tiny"))
    still = renderer.render_chunk(picture, torch.zeros(1, 1, 2, 24, 32), torch.zeros(1, 1, 24, 32))
    assert torch.equal(still[0], picture)


def test_render_frames_with_the_learned_renderer(checkpoint) -> None:
    renderer = load_renderer(checkpoint)
    picture = torch.rand(2, 3, 24, 32)
    motion = MotionTexture.from_volume(SpectralVolume(swaying_volume(24, 32).coeffs.expand(2, -1, -1, -1, -1),
                                                      fps=24.0, period=24), 6, 24.0)
    frames = render_frames(renderer, picture, motion)
    assert frames.shape == (2, 6, 24, 32, 3) and 0 <= float(frames.min()) and float(frames.max()) <= 1
    # A frame does not depend on the chunk (or batch) it was rendered in.
    fields = motion.fields(0, 6)
    metric = importance_metric(motion)
    alone = torch.cat([renderer.render_chunk(picture, fields[i:i + 1], metric) for i in range(6)])
    assert torch.allclose(alone.permute(1, 0, 3, 4, 2), frames, atol=1e-5)
    # The loaded file renders exactly what the saved network did.
    again = render_frames(load_renderer(checkpoint), picture, motion)
    assert torch.equal(again, frames)


def rewritten(tmp_path, source, name, tensors=None, meta=None):
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as f:
        original = f.metadata()
    path = tmp_path / name
    save_file(tensors if tensors is not None else load_file(str(source)), str(path),
              metadata=meta if meta is not None else original)
    return path, original


def test_bad_checkpoints_are_refused_with_clear_errors(checkpoint, tmp_path) -> None:
    pickled = tmp_path / "pickled.safetensors"
    torch.save(new_renderer_net("tiny").state_dict(), pickled)
    with pytest.raises(ValueError, match="pickled checkpoints are never loaded"):
        load_renderer(pickled)
    renamed = tmp_path / "r.pt"
    renamed.write_bytes(checkpoint.read_bytes())
    with pytest.raises(ValueError, match="must be .safetensors"):
        load_renderer(renamed)
    _, meta = rewritten(tmp_path, checkpoint, "probe.safetensors")
    motion_like, _ = rewritten(tmp_path, checkpoint, "motion.safetensors", meta={**meta, "format": "gid.motion_ldm"})
    with pytest.raises(ValueError, match="is not a GID renderer checkpoint"):
        load_renderer(motion_like)
    config = json.loads(meta["config"])
    typo, _ = rewritten(tmp_path, checkpoint, "typo.safetensors",
                        meta={**meta, "config": json.dumps({**config, "widhts": config["widths"]})})
    with pytest.raises(ValueError, match="bad renderer config"):
        load_renderer(typo)
    wider, _ = rewritten(tmp_path, checkpoint, "wider.safetensors",
                         meta={**meta, "config": json.dumps({**config, "widths": [w * 2 for w in config["widths"]]})})
    with pytest.raises(ValueError, match="weights do not match the renderer config"):
        load_renderer(wider)
    tensors = load_file(str(checkpoint))
    tensors["decoder.out.bias"] = torch.full_like(tensors["decoder.out.bias"], math.nan)
    broken, _ = rewritten(tmp_path, checkpoint, "nan.safetensors", tensors=tensors)
    with pytest.raises(ValueError, match="NaN"):
        load_renderer(broken)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load_renderer(truncated)


def test_training_triples_and_a_short_training_run(tmp_path) -> None:
    data = build_dataset(tmp_path / "data", 3, num_bins=4, size=32, frames_per_pair=2)
    triples = RendererTriples(PairDataset(data))
    assert len(triples) == 6
    image, target, flow, metric = triples[1]
    assert image.shape == target.shape == (3, 32, 32) and flow.shape == (2, 32, 32) and metric.shape == (1, 32, 32)
    assert float(flow.abs().max()) > 0.5 and not torch.equal(image, target)  # the scene moved by frame t
    cfg = dataclasses.replace(TRAIN_CONFIGS["tiny"], steps={**TRAIN_CONFIGS["tiny"].steps, "renderer": 3},
                              log_every=1)
    final = Trainer(cfg, data, tmp_path / "out", log=lambda text: None, phases=("renderer",)).run()
    assert final.name == RENDERER_FILE and isinstance(load_renderer(final), LearnedRenderer)
    log = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(r["l1"] > 0 and r["samples_per_s"] > 0 for r in log)
    # A dataset without target frames says how to get them.
    no_frames = build_dataset(tmp_path / "motion_only", 2, num_bins=4, size=32, frames_per_pair=0)
    with pytest.raises(ValueError, match="--frames-per-pair"):
        Trainer(cfg, no_frames, tmp_path / "out2", log=lambda text: None, phases=("renderer",)).run()
    pair = PairDataset(data).pair(0)
    assert torch.equal(triple(pair, 0)[1], pair.frames[0])


def test_cli_renders_with_a_learned_renderer(checkpoint, tmp_path) -> None:
    from PIL import Image

    from gid_engine.__main__ import main

    picture = tmp_path / "p.png"
    Image.fromarray((torch.rand(40, 48, 3) * 255).to(torch.uint8).numpy()).save(picture)
    assert main(["animate", str(picture), "-o", str(tmp_path / "o.webp"), "--frames", "4",
                 "--renderer", str(checkpoint)]) == 0
    assert (tmp_path / "o.webp").stat().st_size > 0
    with pytest.raises(SystemExit):
        main(["animate", str(picture), "-o", str(tmp_path / "x.webp"), "--renderer", str(picture)])
    assert SplatRenderer().name != load_renderer(checkpoint).name
