"""Train the learned motion model and/or the learned renderer, on one process or many:

  python -m gid_engine.train --config tiny|paper --data DATASET_DIR --out DIR [--phases motion|renderer|all]
  torchrun --nproc_per_node N -m gid_engine.train ...   (multi-node: torchrun's --nnodes/--node_rank/--rdzv_*)

Motion phases, in order (paper §3): "vae", the slice VAE; "stage1", the U-Net denoising each frequency slice
independently; "stage2", the stage-1 network frozen with zero-initialised frequency attention added and trained.
"renderer": the feature-pyramid renderer (paper §4, gid_engine.render.learned), on the dataset's target frames.
Outputs in --out: gid_motion_stage1.safetensors, gid_motion.safetensors and gid_renderer.safetensors (checkpoints
for models/gid, holding the EMA weights), state_<phase>.safetensors (for --resume) and train_log.jsonl.
Batch sizes are global (over all processes and --accumulate micro-steps), steps count global batches, and data
order depends on the step alone, so any process count trains the same run and --resume may change it.
Rank 0 alone writes files and logs. The model takes its K, fps and period from the dataset.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from . import motion
from .. import devices, formats
from .dataset import PairDataset
from .distributed import World, setup
from .loop import LoopSettings, Phase, cosine_rate, train_phase  # noqa: F401 (cosine_rate: public)
from .motion import NormalizedPairs, measure_normalization, model_config_for, stage2_config  # noqa: F401
from .renderer import RendererTriples, renderer_loss
from .state import load_state  # noqa: F401
from ..render.learned import save_renderer
from ..render.learned_model import RENDERER_CONFIGS, LearnedRendererNet, RendererConfig
from ..sources.ldm.model import CONFIGS, GIDMotionModel, MotionLDMConfig
from ..sources.ldm.unet import FrequencyAttention
from ..spectral.normalization import FrequencyNormalization

MOTION_PHASES = ("vae", "stage1", "stage2")
PHASES = MOTION_PHASES + ("renderer",)
PHASE_GROUPS = {"motion": MOTION_PHASES, "renderer": ("renderer",), "all": PHASES}
STAGE1_FILE = "gid_motion_stage1.safetensors"
FINAL_FILE = "gid_motion.safetensors"
RENDERER_FILE = "gid_renderer.safetensors"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: MotionLDMConfig
    steps: dict  # phase -> optimizer steps
    batch: dict  # phase -> samples per optimizer step over all processes (motion: pictures, each with K slices)
    lr: dict  # phase -> AdamW learning rate
    renderer: RendererConfig = RENDERER_CONFIGS["tiny"]
    vae_slices: int = 64  # slices per VAE step over the global batch (a random subset of each picture's)
    cond_dropout: float = 0.1
    scale_samples: int = 64  # pictures used to measure the latent std
    stats_samples: int = 2000  # pictures used for the normalization percentiles
    save_every: int = 1000
    log_every: int = 50
    seed: int = 0
    sample_steps: int = 250  # DDIM steps the checkpoint asks for by default (paper: 250)
    ema_decay: float = 0.9999
    accumulation: int = 1


TRAIN_CONFIGS = {
    # Runs VAE + both stages + the renderer in minutes on two CPU cores (32x32 motion, small widths).
    "tiny": TrainConfig(model=CONFIGS["tiny"], steps={"vae": 1500, "stage1": 3000, "stage2": 300, "renderer": 1500},
                        batch={"vae": 2, "stage1": 2, "stage2": 2, "renderer": 4},
                        lr={"vae": 2e-3, "stage1": 1e-3, "stage2": 1e-3, "renderer": 1e-3},
                        renderer=RENDERER_CONFIGS["tiny"], vae_slices=16, save_every=100, log_every=25,
                        stats_samples=500, sample_steps=50, ema_decay=0.99),
    # The paper's setting (256x160, LDM-sized networks) for GPUs; step counts, batches and rates are our choice.
    "paper": TrainConfig(model=CONFIGS["paper"],
                         steps={"vae": 100_000, "stage1": 400_000, "stage2": 100_000, "renderer": 200_000},
                         batch={"vae": 32, "stage1": 32, "stage2": 32, "renderer": 32},
                         lr={"vae": 1e-4, "stage1": 1e-4, "stage2": 5e-5, "renderer": 1e-4},
                         renderer=RENDERER_CONFIGS["paper"]),
}


class Trainer:
    def __init__(self, cfg: TrainConfig, data_dir: Path, out: Path, device: torch.device | None = None,
                 workers: int = 0, log=print, world: World | None = None, phases=MOTION_PHASES,
                 stop_after: int | None = None):
        self.cfg, self.out, self.workers, self.log = cfg, Path(out), workers, log
        self.stop_after = stop_after  # steps this run may train before it saves and stops (None: no limit)
        self.stopped = False
        self.steps_run = 0
        self.world = world or World(device=torch.device(device or "cpu"))
        self.device = self.world.device
        self.phases = tuple(p for p in PHASES if p in phases)
        self.pairs = PairDataset(data_dir)
        if len(self.pairs) == 0:
            raise ValueError(f"dataset {data_dir} has no samples")
        self.model_config = model_config_for(cfg.model, self.pairs.manifest)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_file = self.out / "train_log.jsonl"

    def state_path(self, phase: str) -> Path:
        return self.out / f"state_{phase}.safetensors"

    def say(self, text: str) -> None:
        if self.world.is_main:
            self.log(text)

    def settings(self) -> LoopSettings:
        return LoopSettings(accumulation=self.cfg.accumulation, ema_decay=self.cfg.ema_decay,
                            log_every=self.cfg.log_every, save_every=self.cfg.save_every, workers=self.workers)

    def run(self) -> Path | None:
        """Trains the phases; returns the last checkpoint written (None when stop_after stopped the run)."""
        final = None
        model = None
        for index, phase in enumerate(PHASES):
            if phase not in self.phases:
                continue
            if self.stopped:
                return None
            path = self.state_path(phase)
            state = load_state(path) if path.exists() else None
            if phase == "renderer":
                final = self.run_renderer(index, state)
                continue
            if state is not None and state[0]["complete"] == "true":
                model = self.model_from(state[0], state[1])
                self.say(f"{phase}: already complete ({path.name})")
            else:
                if model is None and phase != "vae":
                    model = self.previous_motion_model(phase)
                model = self.phase_model(phase, model, state)
                self.train_motion_phase(phase, index, model, state)
                if self.stopped:
                    return None
            if phase == "stage1":
                self.save_checkpoint(model, self.out / STAGE1_FILE, phase)
            if phase == "stage2":
                final = self.save_checkpoint(model, self.out / FINAL_FILE, "stage2")
        if final is not None:
            self.say(f"wrote {final}")
        return final

    # ----- motion --------------------------------------------------------------------------------------------
    def previous_motion_model(self, phase: str) -> GIDMotionModel:
        before = MOTION_PHASES[MOTION_PHASES.index(phase) - 1]
        path = self.state_path(before)
        if not path.exists():
            raise ValueError(f"--phases starts at {phase} but {path} (the {before} phase's result) does not exist")
        meta, weights, _, _ = load_state(path)
        return self.model_from(meta, weights)

    def save_checkpoint(self, model: GIDMotionModel, path: Path, phase: str) -> Path:
        """A models/gid checkpoint whose default sampling is the config's step count."""
        model.sampling = dataclasses.replace(model.sampling, steps=self.cfg.sample_steps)
        if self.world.is_main:
            model.save(path, {"training": phase})
        self.world.barrier()
        return path

    def model_from(self, meta: dict, weights: dict) -> GIDMotionModel:
        model = GIDMotionModel(formats.read_config(MotionLDMConfig, meta["config"]),
                               formats.read_config(FrequencyNormalization, meta["normalization"], "normalization"))
        model.load_state_dict(weights)
        return model.to(self.device)

    def phase_model(self, phase: str, previous: GIDMotionModel | None, state) -> GIDMotionModel:
        if state is not None:  # resuming this phase
            return self.model_from(state[0], state[1])
        if phase == "vae":
            data = NormalizedPairs(self.pairs, self.model_config, None)
            norm = measure_normalization(data, self.cfg.stats_samples, self.cfg.seed)
            self.say(f"normalization scales: {[round(s, 4) for s in norm.scales]}")
            torch.manual_seed(self.cfg.seed)
            return GIDMotionModel(self.model_config, norm).to(self.device)
        if phase == "stage1":
            return self.with_latent_scale(previous)
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
        self.say(f"latent std {1 / scale:.4f}: latent_scale = {scale:.4f}")
        rescaled = GIDMotionModel(dataclasses.replace(model.config, latent_scale=scale), model.normalization)
        rescaled.load_state_dict(model.state_dict())
        return rescaled.to(self.device)

    def train_motion_phase(self, phase: str, index: int, model: GIDMotionModel, state) -> None:
        cfg = self.cfg
        seed = cfg.seed + 1_000_003 * (index + 1)
        batch = cfg.batch[phase]
        if phase == "vae":
            loss = motion.vae_loss_fn(seed, motion.slices_per_sample(cfg.vae_slices, batch, model.config.num_bins))
        else:
            loss = motion.diffusion_loss_fn(seed, phase, cfg.cond_dropout)
        spec = Phase(phase, model, motion.trainable(phase, model), NormalizedPairs(self.pairs, model.config,
                     model.normalization), loss, cfg.steps[phase], batch, cfg.lr[phase], seed,
                     {"config": model.config.to_json(), "normalization": model.normalization.to_json()})
        self.train(spec, state)

    def train(self, spec: Phase, state) -> None:
        start, resume = 0, None
        if state is not None:
            meta, _, ema, optim = state
            start, resume = int(meta["step"]), (ema, optim, meta)
            self.say(f"{spec.name}: resuming at step {start} of {spec.steps} on {self.world.size} process(es) "
                     f"(saved by {meta.get('world_size', '?')})")
        limit = None if self.stop_after is None else self.stop_after - self.steps_run
        complete = train_phase(spec, self.world, self.settings(), self.state_path(spec.name), self.log_file, self.log,
                               resume=resume, start=start, stop_after=limit)
        self.steps_run += min(spec.steps, start + (limit if limit is not None else spec.steps)) - start
        if not complete:
            self.stopped = True
            self.say(f"{spec.name}: stopped at step {start + limit} of {spec.steps} (--stop-after); run again with "
                     "--resume to continue")

    # ----- renderer ------------------------------------------------------------------------------------------
    def run_renderer(self, index: int, state) -> Path:
        path = self.out / RENDERER_FILE
        if state is not None and state[0]["complete"] == "true":
            net = LearnedRendererNet(formats.read_config(RendererConfig, state[0]["config"], "renderer config"))
            net.load_state_dict(state[1])
            self.say(f"renderer: already complete ({self.state_path('renderer').name})")
        else:
            config = (formats.read_config(RendererConfig, state[0]["config"], "renderer config") if state is not None
                      else self.cfg.renderer)
            torch.manual_seed(self.cfg.seed)
            net = LearnedRendererNet(config).to(self.device)
            if state is not None:
                net.load_state_dict(state[1])
            net.requires_grad_(True)
            spec = Phase("renderer", net, dict(net.named_parameters()), RendererTriples(self.pairs), renderer_loss,
                         self.cfg.steps["renderer"], self.cfg.batch["renderer"], self.cfg.lr["renderer"],
                         self.cfg.seed + 1_000_003 * (index + 1), {"config": config.to_json()})
            self.train(spec, state)
            if self.stopped:
                return None
        if self.world.is_main:
            save_renderer(net, path, {"training": "renderer"})
        self.world.barrier()
        return path


def parse_phases(text: str) -> tuple[str, ...]:
    names = []
    for part in text.split(","):
        part = part.strip()
        if part in PHASE_GROUPS:
            names += PHASE_GROUPS[part]
        elif part in PHASES:
            names.append(part)
        else:
            raise argparse.ArgumentTypeError(f"--phases: unknown phase {part!r}; allowed: "
                                             f"{', '.join(list(PHASE_GROUPS) + list(PHASES))} (comma-separated)")
    return tuple(p for p in PHASES if p in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid_engine.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(TRAIN_CONFIGS), required=True)
    parser.add_argument("--data", required=True, help="dataset folder (manifest.json + pairs)")
    parser.add_argument("--out", required=True, help="output folder for checkpoints, state and log")
    parser.add_argument("--phases", type=parse_phases, default=MOTION_PHASES,
                        help="motion (vae,stage1,stage2; the default), renderer, all, or a comma list of phases")
    parser.add_argument("--resume", action="store_true", help="continue from the state files in --out")
    devices.add_argument(parser, "; under torchrun each process takes cuda:LOCAL_RANK")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes per training process")
    for phase in PHASES:
        parser.add_argument(f"--{phase}-steps", type=int, default=None, help=f"override the config's {phase} steps")
    parser.add_argument("--batch", type=int, default=None, help="global batch of every phase (override)")
    parser.add_argument("--accumulate", type=int, default=None, help="micro-steps per optimizer step (default 1)")
    parser.add_argument("--ema-decay", type=float, default=None, help="EMA decay of the saved weights (override)")
    parser.add_argument("--log-every", type=int, default=None)
    parser.add_argument("--save-every", type=int, default=None)
    parser.add_argument("--stop-after", type=int, default=None,
                        help="train at most this many steps in this run, then save the state and stop (a job's time "
                             "slice; continue with --resume, with any number of processes)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    cfg = TRAIN_CONFIGS[args.config]
    steps = {p: getattr(args, f"{p}_steps") if getattr(args, f"{p}_steps") is not None else cfg.steps[p] for p in PHASES}
    if any(v < 1 for v in steps.values()):
        parser.error("step counts must be at least 1")
    for name in ("batch", "accumulate", "log_every", "save_every", "stop_after"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.ema_decay is not None and not 0 <= args.ema_decay < 1:
        parser.error(f"--ema-decay must be in [0, 1), got {args.ema_decay}")
    changes = {"steps": steps, "seed": cfg.seed if args.seed is None else args.seed}
    if args.batch is not None:
        changes["batch"] = {p: args.batch for p in PHASES}
    for arg, field in (("accumulate", "accumulation"), ("ema_decay", "ema_decay"), ("log_every", "log_every"),
                       ("save_every", "save_every")):
        if getattr(args, arg) is not None:
            changes[field] = getattr(args, arg)
    cfg = dataclasses.replace(cfg, **changes)
    out = Path(args.out)
    if any(out.glob("state_*.safetensors")) and not args.resume:
        parser.error(f"{out} holds a previous run's state; pass --resume to continue it or choose another --out")
    world = setup(None if args.device == devices.AUTO else args.device)
    try:
        Trainer(cfg, Path(args.data), out, workers=args.workers, log=lambda text: print(text, flush=True),
                world=world, phases=args.phases, stop_after=args.stop_after).run()
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        world.close()
    return 0
