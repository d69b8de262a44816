"""End-to-end proof of the learned motion model's machinery on CPU (tiny config, synthetic scenes).

Scenes: a static background with a few coloured discs and boxes; every pixel of a shape follows
d(t) = (2.5 r, 2.5 b) px * sin(2 pi c t / T) over the T = 150 frame window, with c = 1.3 cycles for green < 0.5
and 2.6 otherwise, so the spectral volume is a known, learnable function of the picture. Like real clips the
motion does not fit the window a whole number of times, so the spectrum leaks into every bin and the truncated
inverse FFT does not loop by itself: what looping guidance is for. The tiny model (VAE, stage 1, stage 2) is trained with
the real training CLI code on these pairs, then measured:
 (a) VAE: relative error of reconstructed held-out slices, vs 1.0 for predicting zero;
 (b) diffusion: relative error of sampled volumes for training pictures vs their ground truth, compared with
     the prior mean (the average ground-truth volume of the training set);
 (c) looping guidance: mean |F_T - F_1| (pixels) of unguided vs loop-guided samples, and their ratio.
The tiny model predicts v rather than eps (MotionLDMConfig.v_prediction): with eps, 3000 steps left its samples no
closer to the truth than the prior mean (relative error 0.97 vs 0.90); with v, 0.48.
build_dataset's pairs also hold later frames of their scenes, drawn exactly (benchmarks/learned_renderer.py trains
the renderer on them).
Usage: nice -n 10 python benchmarks/learned_model.py [--json] [--scenes N] [--steps-scale X] [--threads N]
Torch runs on one thread by default: on a small shared CPU, OpenMP's spin-waiting threads made every
training step 10-50x slower than one thread.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gid_engine.training.dataset import PairDataset, write_manifest, write_pair  # noqa: E402
from gid_engine.sources.ldm.model import displacement_from_channels  # noqa: E402
from gid_engine.spectral.motion import trajectories_to_spectral_volume  # noqa: E402
from gid_engine.spectral.volume import SpectralVolume  # noqa: E402
from gid_engine.training.train import TRAIN_CONFIGS, NormalizedPairs, Trainer  # noqa: E402

FPS, PERIOD = 30.0, 150
LOOP_U = 1000.0  # loop guidance strength for (c)


def scene_shapes(seed: int, size: int):
    """(background colour [3], shapes [(colour [3], cx, cy, radius, is_disc)]) of a synthetic scene, in drawing order."""
    g = torch.Generator().manual_seed(seed)
    background = 0.15 + 0.2 * torch.rand(3, generator=g)
    shapes = []
    for _ in range(int(torch.randint(2, 4, (1,), generator=g))):
        colour = torch.rand(3, generator=g)
        cx, cy = (torch.rand(2, generator=g) * size).tolist()
        radius = 4.0 + 5.0 * float(torch.rand(1, generator=g))
        shapes.append((colour, cx, cy, radius, float(torch.rand(1, generator=g)) < 0.5))
    return background, shapes


def shape_motion(colour: torch.Tensor, t: float) -> tuple[float, float]:
    """Displacement (x, y) in pixels of a shape of this colour at frame t."""
    cycles = 1.3 if colour[1] < 0.5 else 2.6
    s = math.sin(2 * math.pi * cycles * t / PERIOD)
    return 2.5 * float(colour[0]) * s, 2.5 * float(colour[2]) * s


def draw_scene(background: torch.Tensor, shapes, size: int, t: float = 0.0) -> torch.Tensor:
    """The scene at frame t: every shape moved rigidly by its motion, later shapes on top. [3, size, size]."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    image = background.view(3, 1, 1).expand(3, size, size).clone()
    for colour, cx, cy, radius, disc in shapes:
        dx, dy = shape_motion(colour, t) if t else (0.0, 0.0)
        x, y = xx - cx - dx, yy - cy - dy
        inside = x ** 2 + y ** 2 <= radius ** 2 if disc else (x.abs() <= radius) & (y.abs() <= 0.7 * radius)
        image[:, inside] = colour[:, None]
    return image


def synthetic_scene(seed: int, size: int = 32, num_bins: int = 8):
    """(picture [3, H, W], spectral volume) with motion tied to the shapes' colours."""
    background, shapes = scene_shapes(seed, size)
    image = draw_scene(background, shapes, size)
    amplitude = torch.zeros(2, size, size)
    cycles = torch.zeros(size, size)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    for colour, cx, cy, radius, disc in shapes:
        if disc:
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
        else:
            inside = ((xx - cx).abs() <= radius) & ((yy - cy).abs() <= 0.7 * radius)
        amplitude[0][inside] = 2.5 * float(colour[0])
        amplitude[1][inside] = 2.5 * float(colour[2])
        cycles[inside] = 1.3 if colour[1] < 0.5 else 2.6
    t = torch.arange(PERIOD, dtype=torch.float32).view(-1, 1, 1, 1)
    trajectories = amplitude * torch.sin(2 * math.pi * cycles * t / PERIOD)  # [T, 2, H, W]; background static
    return image, trajectories_to_spectral_volume(trajectories, FPS, num_bins)


def build_dataset(root: Path, count: int, first_seed: int = 0, num_bins: int = 8, size: int = 32,
                  frames_per_pair: int = 4) -> Path:
    """Synthetic pairs; each also holds `frames_per_pair` later frames of its scene (renderer training targets)."""
    from gid_engine.training.data import target_frame_times

    root.mkdir(parents=True, exist_ok=True)
    samples = []
    times = target_frame_times(PERIOD, frames_per_pair)
    for i in range(count):
        seed = first_seed + i
        image, volume = synthetic_scene(seed, size=size, num_bins=num_bins)
        background, shapes = scene_shapes(seed, size)
        frames = torch.stack([draw_scene(background, shapes, size, t) for t in times]) if times else None
        write_pair(root / f"{i:06d}.safetensors", image, volume, source=f"synthetic-{seed}", frames=frames,
                   frame_times=times)
        samples.append({"file": f"{i:06d}.safetensors", "source": f"synthetic-{seed}"})
    write_manifest(root, samples, [], height=size, width=size, num_bins=num_bins, fps=FPS, period=PERIOD,
                   frames_per_pair=frames_per_pair)
    return root


def relative_error(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float((pred - truth).norm() / truth.norm().clamp(min=1e-12))


@torch.no_grad()
def vae_error(model, held_out: NormalizedPairs) -> float:
    """Relative error of VAE reconstructions of held-out normalized slices (zero prediction = 1.0)."""
    channels = torch.stack([held_out[i][1] for i in range(len(held_out))])
    latents = model.encode(channels)
    return relative_error(model.decode(latents, channels.shape[0]), channels)


def first_last_gap(channels: torch.Tensor, period: int) -> float:
    """Mean |F_T - F_1| in pixels, T = period - 1 (the loop constraint's default)."""
    fields = displacement_from_channels(channels, [1.0, float(period - 1)], period)
    return float((fields[1] - fields[0]).abs().mean())


def mean_amplitude(channels: torch.Tensor, period: int) -> float:
    """Mean |displacement| in pixels over the window (every 5th frame)."""
    return float(displacement_from_channels(channels, [float(t) for t in range(0, period, 5)], period).abs().mean())


def nearest_loop(channels: torch.Tensor, period: int) -> torch.Tensor:
    """Least-squares projection of every pixel's spectrum onto spectra with F_T = F_1 and v_T = v_1."""
    c = channels.shape[1]
    last = float(period - 1)
    rows = []
    for j in range(c):  # the constraints are linear in the channels and the same at every pixel
        unit = torch.zeros(1, c, 1, 1, dtype=torch.float64)
        unit[0, j] = 1
        f = displacement_from_channels(unit, [1.0, 2.0, last - 1, last], period)[:, 0, :, 0, 0]
        rows.append(torch.cat([f[3] - f[0], (f[3] - f[2]) - (f[1] - f[0])]))
    a = torch.stack(rows, 1)  # [4, C]
    x = channels.double().permute(0, 2, 3, 1).reshape(-1, c)
    x = x - (x @ a.T) @ torch.linalg.pinv(a @ a.T) @ a
    return x.reshape(channels.shape[0], *channels.shape[2:], c).permute(0, 3, 1, 2).to(channels.dtype)


def run(scenes: int, held_out: int, steps_scale: float, sample_steps: int, pictures: int, log,
        keep: Path | None = None) -> dict:
    figures: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or Path(scratch)
        data = build_dataset(tmp / "train", scenes)
        test = build_dataset(tmp / "test", held_out, first_seed=10_000)
        cfg = TRAIN_CONFIGS["tiny"]
        cfg = dataclasses.replace(cfg, steps={k: max(1, round(v * steps_scale)) for k, v in cfg.steps.items()})
        started = time.perf_counter()
        trainer = Trainer(cfg, data, tmp / "out", torch.device("cpu"), log=log)
        final = trainer.run()
        figures["train_seconds"] = round(time.perf_counter() - started, 1)
        figures["train_steps"] = cfg.steps

        from gid_engine.sources.checkpoints import load_motion_source
        model = load_motion_source(final)
        stage1 = load_motion_source(tmp / "out" / "gid_motion_stage1.safetensors")

        # (a) VAE on held-out scenes.
        figures["vae_relative_error"] = round(vae_error(model, NormalizedPairs(PairDataset(test), model.config,
                                                                               model.normalization)), 4)
        figures["vae_zero_prediction_error"] = 1.0

        # (b) samples for training pictures vs ground truth, and the prior mean.
        train_pairs = NormalizedPairs(trainer.pairs, model.config, None)
        truths, images = [], []
        for i in range(len(train_pairs)):
            image, volume = train_pairs.volume_and_image(i)
            images.append(image)
            truths.append(volume.to_channels()[0])
        truths, images = torch.stack(truths), torch.stack(images)
        prior_mean = truths.mean(0, keepdim=True)
        picks = list(range(min(pictures, len(images))))
        # The VAE bounds what any sample can reach: encode + decode of the true volumes, in pixel units.
        with torch.no_grad():
            normalized = model.normalization.normalize(SpectralVolume.from_channels(truths[picks], FPS, PERIOD))
            roundtrip = model.denormalize_channels(model.decode(model.encode(normalized), len(picks)))
        figures["vae_roundtrip_pixel_relative_error"] = round(relative_error(roundtrip, truths[picks]), 4)
        results = {}
        for label, source in (("stage2", model), ("stage1", stage1)):
            volume = source.predict(images[picks], seed=1, sampling={"steps": sample_steps})
            results[label] = volume.to_channels()
        cfg_only = model.predict(images[picks], seed=1, sampling={"steps": sample_steps, "cfg": 1.75}).to_channels()
        figures["sample_relative_error"] = round(relative_error(results["stage2"], truths[picks]), 4)
        figures["cfg_sample_relative_error"] = round(relative_error(cfg_only, truths[picks]), 4)
        figures["stage1_sample_relative_error"] = round(relative_error(results["stage1"], truths[picks]), 4)
        figures["prior_mean_relative_error"] = round(relative_error(prior_mean.expand(len(picks), -1, -1, -1),
                                                                    truths[picks]), 4)
        figures["sample_vs_prior_mean_ratio"] = round(figures["sample_relative_error"]
                                                      / figures["prior_mean_relative_error"], 4)

        # (c) looping guidance. u is in our loss units (displacements in grid widths, L1 sums over pixels);
        # the paper's u = 200 pairs with 500 steps and w = 1.75, and at this scale CFG itself costs accuracy.
        unguided = results["stage2"]
        guided = model.predict(images[picks], seed=1, sampling={"steps": sample_steps, "loop_guidance": LOOP_U,
                                                               "loop_recurrence": 2}).to_channels()
        figures["loop_guidance_u"] = LOOP_U
        figures["loop_gap_unguided_px"] = round(first_last_gap(unguided, model.config.period), 5)
        figures["loop_gap_cfg_only_px"] = round(first_last_gap(cfg_only, model.config.period), 5)
        figures["loop_gap_guided_px"] = round(first_last_gap(guided, model.config.period), 5)
        figures["loop_gap_ground_truth_px"] = round(first_last_gap(truths[picks], model.config.period), 5)
        figures["loop_gap_reduction_factor"] = round(figures["loop_gap_unguided_px"]
                                                     / max(figures["loop_gap_guided_px"], 1e-9), 2)
        figures["guided_amplitude_ratio"] = round(mean_amplitude(guided, model.config.period)
                                                  / mean_amplitude(unguided, model.config.period), 4)
        figures["guided_sample_relative_error"] = round(relative_error(guided, truths[picks]), 4)
        # The ground truth does not loop; the smallest change of it that does is this far from it:
        figures["ground_truth_to_nearest_loop_relative"] = round(
            relative_error(nearest_loop(truths[picks], model.config.period), truths[picks]), 4)
        figures["sample_steps"] = sample_steps
        figures["scenes"], figures["held_out"], figures["pictures_sampled"] = scenes, held_out, len(picks)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print all figures as one JSON object on the last line")
    parser.add_argument("--scenes", type=int, default=48)
    parser.add_argument("--held-out", type=int, default=12)
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply the tiny config's training steps")
    parser.add_argument("--sample-steps", type=int, default=50)
    parser.add_argument("--pictures", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--keep", type=Path, help="keep the datasets and the trained run in this folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    log = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else print
    figures = run(args.scenes, args.held_out, args.steps_scale, args.sample_steps, args.pictures, log, args.keep)
    if not args.json:
        print(f"(a) VAE held-out relative error {figures['vae_relative_error']} (zero prediction: 1.0); "
              f"pixel-unit round trip of the sampled pictures {figures['vae_roundtrip_pixel_relative_error']}")
        print(f"(b) sample relative error {figures['sample_relative_error']} (stage 1: "
              f"{figures['stage1_sample_relative_error']}, w=1.75: {figures['cfg_sample_relative_error']}) "
              f"vs prior mean {figures['prior_mean_relative_error']} "
              f"(ratio {figures['sample_vs_prior_mean_ratio']})")
        print(f"(c) |F_T - F_1| unguided {figures['loop_gap_unguided_px']} px, w=1.75 only "
              f"{figures['loop_gap_cfg_only_px']} px, loop-guided (u={LOOP_U:g}) {figures['loop_gap_guided_px']} px: "
              f"{figures['loop_gap_reduction_factor']}x smaller; amplitude kept {figures['guided_amplitude_ratio']}, "
              f"relative error {figures['guided_sample_relative_error']} (the nearest looping spectrum to the "
              f"truth is {figures['ground_truth_to_nearest_loop_relative']} from it)")
        print(f"training took {figures['train_seconds']} s")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
