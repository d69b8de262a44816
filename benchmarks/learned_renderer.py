"""Learned feature-pyramid renderer vs the training-free renderer vs average splatting, on held-out frames.

    nice -n 10 python benchmarks/learned_renderer.py [--json] [--steps N] [--scenes N] [--threads N]

Training (tiny config, CPU, the real trainer code): synthetic scenes (benchmarks/learned_model.py: shapes
swaying over a static background, their later frames drawn exactly, occlusions included) and the windows of
samples/dandelion_sway.mp4 that start in its first 2/3 (a dataset built by gid_engine.training.data).
Held out: synthetic scenes with other seeds (never trained on) and the clip's last window (frames it never
trained on). For each held-out target frame, all three renderers get the same picture, the same flow (the
pair's spectral volume at t minus at 0, what a renderer gets at inference) and the same splat weight
(importance_metric at the default temperature; average splatting: weight 0); PSNR/SSIM (uint8, as a user
receives frames) against the real frame. JSON (--json): top-level learned_psnr, training_free_psnr,
average_splat_psnr, *_ssim (means over all held-out frames), per-set figures, training time and throughput.
Timings are from a shared 2-core CPU: noisy.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.learned_model import build_dataset  # noqa: E402
from benchmarks.render_fidelity import psnr, ssim  # noqa: E402
from gid_engine.render.learned import load_renderer  # noqa: E402
from gid_engine.render.renderer import SplatRenderer  # noqa: E402
from gid_engine.training.data import BuildOptions, build  # noqa: E402
from gid_engine.training.dataset import MANIFEST, PairDataset, write_manifest  # noqa: E402
from gid_engine.training.renderer import triple  # noqa: E402
from gid_engine.training.train import RENDERER_FILE, TRAIN_CONFIGS, Trainer  # noqa: E402

CLIP = ROOT / "samples" / "dandelion_sway.mp4"
SIZE = 64
CLIP_OPTIONS = BuildOptions(size=(SIZE, SIZE), fps=24.0, period=16, stride=4, num_bins=8, max_camera_px=1e9,
                            min_reliable=0.0, min_motion_px=0.0, frames_per_pair=4)


def clip_sets(root: Path) -> tuple[list[Path], list[Path]]:
    """The sample clip's pairs: (train windows: start in the first 2/3 of the clip, held-out: the rest)."""
    videos = root / "videos"
    videos.mkdir(parents=True)
    shutil.copyfile(CLIP, videos / CLIP.name)
    samples, _ = build([videos / CLIP.name], root / "clip", videos, CLIP_OPTIONS, log=lambda text: None)
    last = max(int(s["source"].rsplit("@", 1)[1]) for s in samples)
    train = [root / "clip" / s["file"] for s in samples if int(s["source"].rsplit("@", 1)[1]) + 15 < last]
    test = [root / "clip" / s["file"] for s in samples if int(s["source"].rsplit("@", 1)[1]) == last]
    return train, test


def merged(root: Path, files: list[Path], frames_per_pair: int) -> Path:
    """A dataset folder of copies of these pair files (same size, bins, fps and period)."""
    root.mkdir(parents=True)
    samples = []
    for i, f in enumerate(files):
        shutil.copyfile(f, root / f"{i:06d}.safetensors")
        samples.append({"file": f"{i:06d}.safetensors", "source": f.name})
    write_manifest(root, samples, [], height=SIZE, width=SIZE, num_bins=CLIP_OPTIONS.num_bins, fps=CLIP_OPTIONS.fps,
                   period=CLIP_OPTIONS.period, frames_per_pair=frames_per_pair)
    return root


def to_u8(frame: torch.Tensor) -> np.ndarray:
    return (frame.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def evaluate(renderers: dict, data: PairDataset) -> dict[str, dict[str, list[float]]]:
    scores = {name: {"psnr": [], "ssim": []} for name in renderers}
    for index in range(len(data)):
        pair = data.pair(index)
        for j in range(pair.frames.shape[0]):
            image, target, flow, metric = triple(pair, j)
            truth = to_u8(target)
            for name, (renderer, weight) in renderers.items():
                frame = renderer.render_chunk(image[None], flow[None, None], metric[None] * weight)[0, 0]
                scores[name]["psnr"].append(psnr(to_u8(frame), truth))
                scores[name]["ssim"].append(ssim(to_u8(frame), truth))
    return scores


def run(steps: int, scenes: int, held_out: int, log) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        clip_train, clip_test = clip_sets(tmp)
        synthetic = build_dataset(tmp / "synthetic", scenes, size=SIZE, num_bins=CLIP_OPTIONS.num_bins)
        synthetic_test = build_dataset(tmp / "synthetic_test", held_out, first_seed=10_000, size=SIZE,
                                       num_bins=CLIP_OPTIONS.num_bins)
        # The synthetic scenes' volumes are at 30 fps / 150 frames; the clip's at 24 / 16. Training pairs may
        # differ in both (each pair carries its own); the manifest's fps/period only set the motion model's.
        train_files = [synthetic / s["file"] for s in json.loads((synthetic / MANIFEST).read_text())["samples"]]
        train = merged(tmp / "train", train_files + clip_train, 4)
        clip_test_set = merged(tmp / "clip_test", clip_test, 4)

        cfg = TRAIN_CONFIGS["tiny"]
        cfg = dataclasses.replace(cfg, steps={**cfg.steps, "renderer": steps}, log_every=max(1, steps // 10),
                                  save_every=10 ** 9)
        started = time.perf_counter()
        Trainer(cfg, train, tmp / "out", torch.device("cpu"), log=log, phases=("renderer",)).run()
        train_seconds = time.perf_counter() - started
        learned = load_renderer(tmp / "out" / RENDERER_FILE)
        renderers = {"learned": (learned, 1.0), "training_free": (SplatRenderer(), 1.0),
                     "average_splat": (SplatRenderer(), 0.0)}
        sets = {"synthetic_held_out_scenes": evaluate(renderers, PairDataset(synthetic_test)),
                "dandelion_held_out_window": evaluate(renderers, PairDataset(clip_test_set))}
        records = [json.loads(line) for line in (tmp / "out" / "train_log.jsonl").read_text().splitlines()]

    figures: dict = {}
    for name in renderers:
        for metric in ("psnr", "ssim"):
            values = [v for s in sets.values() for v in s[name][metric]]
            figures[f"{name}_{metric}"] = round(float(np.mean(values)), 4)
    figures["held_out_frames"] = sum(len(s["learned"]["psnr"]) for s in sets.values())
    figures["per_set"] = {set_name: {f"{name}_{metric}": round(float(np.mean(v)), 4)
                                     for name, m in scores.items() for metric, v in m.items()}
                          | {"frames": len(scores["learned"]["psnr"])} for set_name, scores in sets.items()}
    figures["learned_minus_training_free_psnr"] = round(figures["learned_psnr"] - figures["training_free_psnr"], 4)
    figures["learned_temperature_factor"] = round(float(learned.net.log_temperature.detach().exp()), 4)
    figures["train"] = {"steps": steps, "batch": cfg.batch["renderer"], "pairs": scenes + len(clip_train),
                        "seconds": round(train_seconds, 1),
                        "samples_per_s": round(float(np.mean([r["samples_per_s"] for r in records])), 2),
                        "final_loss": records[-1]["loss"]}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--steps", type=int, default=TRAIN_CONFIGS["tiny"].steps["renderer"])
    parser.add_argument("--scenes", type=int, default=24, help="synthetic training scenes")
    parser.add_argument("--held-out", type=int, default=6, help="synthetic held-out scenes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on a small shared CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    figures = run(args.steps, args.scenes, args.held_out, log)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
