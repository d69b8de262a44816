"""Distributed training on CPU under torchrun (Gloo): the tiny config, every phase.

(1) 2 processes x half the batch reach the same weights as 1 process x the full batch (same global batch, same
    data order and per-sample randomness by construction; only the order of float reductions differs);
(2) a run stopped after a few steps on 2 processes and resumed on 1 continues from its step and ends where an
    uninterrupted run ends;
(3) gradient accumulation (2 micro-steps) and data loader worker processes do not change the run either.
About 3 minutes on 2 shared cores, mostly process start-up.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from benchmarks.learned_model import build_dataset

ROOT = Path(__file__).resolve().parents[2]
# ||w_a - w_b|| / ||w_a|| over all weights of a checkpoint after the steps below. Reduction order changes
# gradients by ~1e-7 relative; Adam's g / sqrt(v) turns that into sign flips only for the few weights whose
# gradient nearly cancels between the halves of the batch: measured ~1e-6. A run that sees other samples (the
# control below: one process with half the batch) differs by ~1e-2.
TOLERANCE = 1e-5


def train(args: list[str], processes: int, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    result = subprocess.run([*launcher, "-m", "gid_engine.train", "--config", "tiny", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def relative_difference(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    diff = sum(float((a[k] - b[k]).pow(2).sum()) for k in a)
    return (diff / sum(float(a[k].pow(2).sum()) for k in a)) ** 0.5


def log_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("dist") / "data", 6, num_bins=4, size=32)


def test_two_processes_with_half_the_batch_match_one_with_the_full_batch(dataset, tmp_path) -> None:
    common = ["--data", str(dataset), "--phases", "all", "--batch", "4", "--log-every", "1", "--vae-steps", "3",
              "--stage1-steps", "3", "--stage2-steps", "2", "--renderer-steps", "3"]
    train([*common, "--out", str(tmp_path / "one")], processes=1)
    two = train([*common, "--out", str(tmp_path / "two")], processes=2)
    for name in ("gid_motion_stage1.safetensors", "gid_motion.safetensors", "gid_renderer.safetensors"):
        one_w, two_w = load_file(str(tmp_path / "one" / name)), load_file(str(tmp_path / "two" / name))
        assert relative_difference(one_w, two_w) < TOLERANCE, name
    # Control: a run that differs only in its samples (one process with half the batch) is far outside the tolerance.
    train(["--data", str(dataset), "--phases", "renderer", "--batch", "2", "--renderer-steps", "3",
           "--out", str(tmp_path / "half")], processes=1)
    control = relative_difference(load_file(str(tmp_path / "one" / "gid_renderer.safetensors")),
                                  load_file(str(tmp_path / "half" / "gid_renderer.safetensors")))
    assert control > 100 * TOLERANCE
    # Only rank 0 logs: one line per step, saying 2 processes trained it, with throughput.
    records = log_of(tmp_path / "two")
    assert [r["phase"] for r in records] == ["vae"] * 3 + ["stage1"] * 3 + ["stage2"] * 2 + ["renderer"] * 3
    assert all(r["processes"] == 2 and r["samples_per_s"] > 0 and r["samples_seen"] == 4 * r["step"] for r in records)
    assert two.stdout.count('"phase": "vae", "step": 1,') == 1


def test_stopped_run_resumes_with_another_process_count(dataset, tmp_path) -> None:
    common = ["--data", str(dataset), "--phases", "renderer", "--batch", "4", "--log-every", "1",
              "--renderer-steps", "5"]
    train([*common, "--out", str(tmp_path / "whole")], processes=1)
    stopped = train([*common, "--out", str(tmp_path / "split"), "--stop-after", "2"], processes=2)
    assert "stopped at step 2 of 5" in stopped.stdout
    assert not (tmp_path / "split" / "gid_renderer.safetensors").exists()
    resumed = train([*common, "--out", str(tmp_path / "split"), "--resume"], processes=1)
    assert "resuming at step 2 of 5 on 1 process(es) (saved by 2)" in resumed.stdout
    records = log_of(tmp_path / "split")
    assert [(r["step"], r["processes"]) for r in records] == [(1, 2), (2, 2), (3, 1), (4, 1), (5, 1)]
    whole = load_file(str(tmp_path / "whole" / "gid_renderer.safetensors"))
    split = load_file(str(tmp_path / "split" / "gid_renderer.safetensors"))
    assert relative_difference(whole, split) < TOLERANCE
    # The same continuation with the per-step losses: the resumed run saw the very samples the whole one did.
    whole_loss = [r["loss"] for r in log_of(tmp_path / "whole")]
    assert [r["loss"] for r in records] == pytest.approx(whole_loss, rel=1e-4)


def test_gradient_accumulation_and_loader_workers_train_the_same_run(dataset, tmp_path) -> None:
    common = ["--data", str(dataset), "--phases", "renderer", "--batch", "4", "--renderer-steps", "3"]
    train([*common, "--out", str(tmp_path / "plain")], processes=1)
    train([*common, "--out", str(tmp_path / "accumulated"), "--accumulate", "2", "--workers", "1"], processes=1)
    plain = load_file(str(tmp_path / "plain" / "gid_renderer.safetensors"))
    accumulated = load_file(str(tmp_path / "accumulated" / "gid_renderer.safetensors"))
    assert relative_difference(plain, accumulated) < TOLERANCE


def test_global_batch_must_split_evenly(dataset, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "gid_engine.train", "--config", "tiny", "--data", str(dataset),
                             "--out", str(tmp_path / "odd"), "--phases", "renderer", "--batch", "3",
                             "--accumulate", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "global batch 3 must be a multiple of processes x accumulation = 1 x 2" in result.stderr
