"""Train the learned motion model: python -m gid_engine.train --config tiny|paper --data DATASET_DIR --out DIR [--resume]

Phases, in order (paper §3): the slice VAE; stage 1, the U-Net denoising each frequency slice independently;
stage 2, the stage-1 network frozen with zero-initialised frequency attention added and trained.
Outputs in --out: gid_motion_stage1.safetensors and gid_motion.safetensors (checkpoints for models/gid),
state_<phase>.safetensors (weights + optimizer, for --resume) and train_log.jsonl (one line per log step).
The dataset folder is the gid_engine.training.dataset format; the model takes its K, fps and period from it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .dataset import PairDataset
from ..sources.ldm.diffusion import add_noise
from ..sources.ldm.model import CONFIGS, GIDMotionModel, MotionLDMConfig
from ..sources.ldm.unet import FrequencyAttention
from ..sources.ldm.vae import vae_loss
from ..spectral.normalization import FrequencyNormalization
from ..spectral.volume import SpectralVolume

PHASES = ("vae", "stage1", "stage2")
STAGE1_FILE = "gid_motion_stage1.safetensors"
FINAL_FILE = "gid_motion.safetensors"
STATE_FORMAT = "gid.train_state"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: MotionLDMConfig
    steps: dict  # phase -> optimizer steps
    batch: dict  # phase -> pictures per step (every picture gives its K slices)
    lr: dict  # phase -> AdamW learning rate
    vae_slices: int = 64  # most slices per VAE step (a random subset of the pictures' slices)
    cond_dropout: float = 0.1
    scale_samples: int = 64  # pictures used to measure the latent std
    stats_samples: int = 2000  # pictures used for the normalization percentiles
    save_every: int = 1000
    log_every: int = 50
    seed: int = 0
    sample_steps: int = 250  # DDIM steps the checkpoint asks for by default (paper: 250)


TRAIN_CONFIGS = {
    # Runs VAE + both stages in minutes on two CPU cores (32x32, small widths).
    "tiny": TrainConfig(model=CONFIGS["tiny"], steps={"vae": 1500, "stage1": 3000, "stage2": 300},
                        batch={"vae": 2, "stage1": 2, "stage2": 2}, lr={"vae": 2e-3, "stage1": 1e-3, "stage2": 1e-3},
                        vae_slices=16, save_every=100, log_every=25, stats_samples=500, sample_steps=50),
    # The paper's setting (256x160, LDM-sized networks) for a GPU; step counts and rates are our choice.
    "paper": TrainConfig(model=CONFIGS["paper"], steps={"vae": 100_000, "stage1": 400_000, "stage2": 100_000},
                         batch={"vae": 4, "stage1": 4, "stage2": 4}, lr={"vae": 1e-4, "stage1": 1e-4, "stage2": 5e-5}),
}


class NormalizedPairs(torch.utils.data.Dataset):
    """Dataset items at the model grid: (picture [3, H, W] in 0..1, normalized channels [4K, H, W])."""

    def __init__(self, pairs: PairDataset, config: MotionLDMConfig, normalization: FrequencyNormalization | None):
        self.pairs, self.config, self.normalization = pairs, config, normalization

    def __len__(self) -> int:
        return len(self.pairs)

    def volume_and_image(self, index: int) -> tuple[torch.Tensor, SpectralVolume]:
        pair = self.pairs.pair(index)
        size = (self.config.height, self.config.width)
        image = pair.image[None]
        if tuple(image.shape[-2:]) != size:
            image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
        return image[0].clamp(0, 1), pair.volume.resize(*size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, volume = self.volume_and_image(index)
        return image, self.normalization.normalize(volume)[0].float()


def measure_normalization(data: NormalizedPairs, samples: int, seed: int, floor: float = 0.01) -> FrequencyNormalization:
    """95th percentiles per bin at the model grid, each raised to at least `floor` x the largest."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(data), generator=g)[:samples].tolist()
    norm = FrequencyNormalization.from_volumes([data.volume_and_image(i)[1] for i in picks])
    top = max(norm.scales)
    return dataclasses.replace(norm, scales=tuple(max(s, floor * top) for s in norm.scales))


def model_config_for(base: MotionLDMConfig, manifest: dict) -> MotionLDMConfig:
    return dataclasses.replace(base, num_bins=int(manifest["num_bins"]), fps=float(manifest["fps"]),
                               period=int(manifest["period"])).validate()


def stage2_config(config: MotionLDMConfig) -> MotionLDMConfig:
    return dataclasses.replace(config, unet=dataclasses.replace(config.unet, frequency_attention=True))


def cosine_rate(peak: float, step: int, total: int, floor: float = 0.1) -> float:
    """Cosine decay from `peak` to floor * peak over the phase (our choice; the paper gives no schedule)."""
    return peak * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1))))


# ----- training state files (safetensors only) -------------------------------------------------------------------
def save_state(path: Path, model: GIDMotionModel, optimizer: torch.optim.Optimizer, phase: str, step: int,
               complete: bool) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().float().contiguous()
    meta = {"format": STATE_FORMAT, "phase": phase, "step": str(step), "complete": str(complete).lower(),
            "config": model.config.to_json(), "normalization": model.normalization.to_json(),
            "optim_groups": json.dumps(opt["param_groups"])}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_state(path: Path) -> tuple[dict, dict, dict]:
    """(metadata, model tensors, optimizer state_dict) of a state file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"{path} is not a GID training state file")
        model = {k[6:]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
        state: dict = {}
        for k in f.keys():
            if k.startswith("optim."):
                _, index, name = k.split(".", 2)
                value = f.get_tensor(k)
                state.setdefault(int(index), {})[name] = value if name != "step" else value.reshape(())
    return meta, model, {"state": state, "param_groups": json.loads(meta["optim_groups"])}


# ----- the phases ----------------------------------------------------------------------------------------------
class Trainer:
    def __init__(self, cfg: TrainConfig, data_dir: Path, out: Path, device: torch.device, workers: int = 0,
                 log=print):
        self.cfg, self.out, self.device, self.workers, self.log = cfg, out, device, workers, log
        self.pairs = PairDataset(data_dir)
        if len(self.pairs) == 0:
            raise ValueError(f"dataset {data_dir} has no samples")
        self.model_config = model_config_for(cfg.model, self.pairs.manifest)
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = out / "train_log.jsonl"

    def state_path(self, phase: str) -> Path:
        return self.out / f"state_{phase}.safetensors"

    def batches(self, data: NormalizedPairs, batch: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=10 ** 9, generator=g)
        loader = torch.utils.data.DataLoader(data, batch_size=batch, sampler=sampler, num_workers=self.workers,
                                             drop_last=True)
        for image, channels in loader:
            yield image.to(self.device), channels.to(self.device)

    def run(self) -> Path:
        model = None
        for index, phase in enumerate(PHASES):
            path = self.state_path(phase)
            meta, weights, optim_state = load_state(path) if path.exists() else (None, None, None)
            if meta is not None and meta["complete"] == "true":
                model = self.model_from(meta, weights)
                self.log(f"{phase}: already complete ({path.name})")
                continue
            model = self.phase_model(phase, model, meta, weights)
            self.train_phase(phase, index, model, optim_state, int(meta["step"]) if meta else 0)
            if phase == "stage1":
                self.save_checkpoint(model, self.out / STAGE1_FILE, phase)
        final = self.save_checkpoint(model, self.out / FINAL_FILE, "stage2")
        self.log(f"wrote {final}")
        return final

    def save_checkpoint(self, model: GIDMotionModel, path: Path, phase: str) -> Path:
        """A models/gid checkpoint whose default sampling is the config's step count."""
        model.sampling = dataclasses.replace(model.sampling, steps=self.cfg.sample_steps)
        return model.save(path, {"training": phase})

    def model_from(self, meta: dict, weights: dict) -> GIDMotionModel:
        model = GIDMotionModel(MotionLDMConfig.from_json(meta["config"]),
                               FrequencyNormalization.from_json(meta["normalization"]))
        model.load_state_dict(weights)
        return model.to(self.device)

    def phase_model(self, phase: str, previous: GIDMotionModel | None, meta, weights) -> GIDMotionModel:
        if meta is not None:  # resuming this phase
            return self.model_from(meta, weights)
        if phase == "vae":
            data = NormalizedPairs(self.pairs, self.model_config, None)
            norm = measure_normalization(data, self.cfg.stats_samples, self.cfg.seed)
            self.log(f"normalization scales: {[round(s, 4) for s in norm.scales]}")
            torch.manual_seed(self.cfg.seed)
            return GIDMotionModel(self.model_config, norm).to(self.device)
        if phase == "stage1":
            previous = self.with_latent_scale(previous)
            return previous
        model = GIDMotionModel(stage2_config(previous.config), previous.normalization).to(self.device)
        missing, unexpected = model.load_state_dict(previous.state_dict(), strict=False)
        new_layers = {f"{name}.{p}" for name, m in model.named_modules() if isinstance(m, FrequencyAttention)
                      for p, _ in m.named_parameters()}
        if unexpected or set(missing) != new_layers:
            raise RuntimeError(f"stage 2 cannot start from stage 1: missing {missing}, unexpected {unexpected}")
        return model

    @torch.no_grad()
    def with_latent_scale(self, model: GIDMotionModel) -> GIDMotionModel:
        data = NormalizedPairs(self.pairs, model.config, model.normalization)
        picks = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.cfg.seed))[:self.cfg.scale_samples]
        latents = torch.cat([model.encode(data[i][1][None].to(self.device)) for i in picks.tolist()])
        scale = 1.0 / float(latents.std().clamp(min=1e-6))
        self.log(f"latent std {1 / scale:.4f}: latent_scale = {scale:.4f}")
        rescaled = GIDMotionModel(dataclasses.replace(model.config, latent_scale=scale), model.normalization)
        rescaled.load_state_dict(model.state_dict())
        return rescaled.to(self.device)

    def trainable(self, phase: str, model: GIDMotionModel) -> list[torch.nn.Parameter]:
        model.requires_grad_(False)
        params = {"vae": list(model.vae.parameters()), "stage1": list(model.unet.parameters()),
                  "stage2": model.unet.frequency_attention_parameters()}[phase]
        for p in params:
            p.requires_grad_(True)
        return params

    def train_phase(self, phase: str, index: int, model: GIDMotionModel, optim_state, start: int) -> None:
        cfg = self.cfg
        params = self.trainable(phase, model)
        optimizer = torch.optim.AdamW(params, lr=cfg.lr[phase], weight_decay=0.0)
        if optim_state is not None:
            optimizer.load_state_dict(optim_state)
        total = cfg.steps[phase]
        seed = cfg.seed + 1_000_003 * (index + 1) + start  # a resumed run continues with its own data order
        g = torch.Generator().manual_seed(seed)
        data = NormalizedPairs(self.pairs, model.config, model.normalization)
        model.train()
        started, sums, count = time.perf_counter(), {}, 0
        step = start
        for image, channels in self.batches(data, cfg.batch[phase], seed):
            if step >= total:
                break
            loss, logs = (self.vae_step(model, channels, g) if phase == "vae"
                          else self.diffusion_step(model, image, channels, phase, g))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = cosine_rate(cfg.lr[phase], step, total)
            optimizer.step()
            step += 1
            count += 1
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if step % cfg.log_every == 0 or step == total:
                record = {"phase": phase, "step": step, "of": total,
                          "s_per_step": round((time.perf_counter() - started) / count, 4),
                          **{k: round(v / count, 6) for k, v in sums.items()}}
                self.log(json.dumps(record))
                with self.log_file.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                started, sums, count = time.perf_counter(), {}, 0
            if step % cfg.save_every == 0 and step < total:
                save_state(self.state_path(phase), model, optimizer, phase, step, complete=False)
        model.eval()
        save_state(self.state_path(phase), model, optimizer, phase, step, complete=True)

    def vae_step(self, model: GIDMotionModel, channels: torch.Tensor, g: torch.Generator):
        b, c, h, w = channels.shape
        slices = channels.reshape(b * (c // 4), 4, h, w)
        keep = torch.randperm(slices.shape[0], generator=g)[:self.cfg.vae_slices].to(slices.device)
        loss, logs = vae_loss(model.vae, slices[keep], generator=g)
        return loss, {"loss": loss.item(), **logs}

    def diffusion_step(self, model: GIDMotionModel, image: torch.Tensor, channels: torch.Tensor, phase: str,
                       g: torch.Generator):
        b = image.shape[0]
        k = model.config.num_bins
        with torch.no_grad():
            z0 = model.encode(channels)
        timesteps = len(model.alphas_cumprod)
        # Stage 1: every slice its own sample (own timestep); stage 2: one sample per picture, all K together.
        t = (torch.randint(timesteps, (b * k,), generator=g) if phase == "stage1"
             else torch.randint(timesteps, (b,), generator=g).repeat_interleave(k)).to(self.device)
        conditioned = (torch.rand(b, generator=g) >= self.cfg.cond_dropout).float().repeat_interleave(k).to(self.device)
        noise = torch.randn(z0.shape, generator=g).to(self.device)
        zt = add_noise(z0, noise, t, model.alphas_cumprod)
        picture = model.condition(image).repeat_interleave(k, dim=0)
        freq = torch.arange(b * k, device=self.device) % k
        out = model.unet(zt.to(model.dtype), t, freq, picture.to(model.dtype), conditioned, k).float()
        loss = F.mse_loss(out, model.training_target(z0, noise, t))
        return loss, {"loss": loss.item()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid_engine.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(TRAIN_CONFIGS), required=True)
    parser.add_argument("--data", required=True, help="dataset folder (manifest.json + pairs)")
    parser.add_argument("--out", required=True, help="output folder for checkpoints, state and log")
    parser.add_argument("--resume", action="store_true", help="continue from the state files in --out")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    for phase in PHASES:
        parser.add_argument(f"--{phase}-steps", type=int, default=None, help=f"override the config's {phase} steps")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    cfg = TRAIN_CONFIGS[args.config]
    steps = {p: getattr(args, f"{p}_steps") if getattr(args, f"{p}_steps") is not None else cfg.steps[p] for p in PHASES}
    if any(v < 1 for v in steps.values()):
        parser.error("step counts must be at least 1")
    cfg = dataclasses.replace(cfg, steps=steps, seed=cfg.seed if args.seed is None else args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("state_*.safetensors")) and not args.resume:
        parser.error(f"{out} holds a previous run's state; pass --resume to continue it or choose another --out")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        Trainer(cfg, Path(args.data), out, device, workers=args.workers,
                log=lambda text: print(text, flush=True)).run()
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
