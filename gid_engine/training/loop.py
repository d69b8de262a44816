"""One training phase on any number of processes: DDP, gradient accumulation, bf16 autocast on CUDA, EMA,
cosine learning rate, throughput logs and resumable state, all rank-0-only IO."""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable

import torch

from .distributed import GlobalBatches, Positioned, World, no_sync
from .ema import EMA
from .state import save_state

# loss(net, *batch tensors, positions) -> (loss, {name: float}); positions seed each sample's randomness.
LossFn = Callable[..., tuple[torch.Tensor, dict]]


@dataclasses.dataclass
class Phase:
    name: str
    net: torch.nn.Module  # what the state file and checkpoint hold
    trainable: dict[str, torch.nn.Parameter]
    data: torch.utils.data.Dataset
    loss: LossFn
    steps: int
    batch: int  # global: samples per optimizer step over all processes and micro-steps
    lr: float
    seed: int
    meta: dict  # extra state-file metadata (the net's config)


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    accumulation: int = 1
    ema_decay: float = 0.999
    log_every: int = 50
    save_every: int = 1000
    workers: int = 0
    bf16: bool = True  # autocast on CUDA only; CPU runs stay float32


class LossModule(torch.nn.Module):
    """The phase's loss as a module's forward, so DistributedDataParallel hooks the backward pass."""

    def __init__(self, net: torch.nn.Module, loss: LossFn):
        super().__init__()
        self.net, self.loss = net, loss

    def forward(self, *batch):
        return self.loss(self.net, *batch)


def cosine_rate(peak: float, step: int, total: int, floor: float = 0.1) -> float:
    """Cosine decay from `peak` to floor * peak over the phase (our choice; the paper gives no schedule)."""
    return peak * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1))))


def train_phase(phase: Phase, world: World, settings: LoopSettings, state_path: Path, log_file: Path, log,
                resume: tuple[dict, dict, dict] | None = None, start: int = 0, stop_after: int | None = None) -> bool:
    """Train `phase.net` from global step `start` to phase.steps; resume = (EMA tensors, optimizer state, meta).

    With stop_after, at most that many steps run now (a job's time slice): the state is saved and False returned.
    """
    optimizer = torch.optim.AdamW(list(phase.trainable.values()), lr=phase.lr, weight_decay=0.0)
    ema = EMA(phase.trainable, settings.ema_decay)
    if resume is not None:
        ema_tensors, optim_state, meta = resume
        ema.load(ema_tensors)
        ema.updates = int(meta.get("ema_updates", start))
        optimizer.load_state_dict(optim_state)
    sampler = GlobalBatches(len(phase.data), phase.batch, world, settings.accumulation, phase.seed, start)
    loader = torch.utils.data.DataLoader(Positioned(phase.data), batch_sampler=sampler,
                                         num_workers=settings.workers)
    model = world.wrap(LossModule(phase.net, phase.loss))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=settings.bf16 and world.device.type == "cuda")
    batches = iter(loader)

    def state(step: int, complete: bool) -> None:
        if world.is_main:
            save_state(state_path, phase.net, ema, optimizer,
                       {"phase": phase.name, "step": step, "complete": str(complete).lower(),
                        "samples_seen": step * phase.batch, "world_size": world.size, **phase.meta})

    phase.net.train()
    started, sums, count = time.perf_counter(), {}, 0
    end = phase.steps if stop_after is None else min(phase.steps, start + stop_after)
    for step in range(start, end):
        for group in optimizer.param_groups:
            group["lr"] = cosine_rate(phase.lr, step, phase.steps)
        optimizer.zero_grad(set_to_none=True)
        for micro in range(settings.accumulation):
            *tensors, positions = next(batches)
            tensors = [t.to(world.device, non_blocking=True) for t in tensors]
            with no_sync(model, micro < settings.accumulation - 1), autocast:
                loss, logs = model(*tensors, positions)
            (loss.float() / settings.accumulation).backward()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v / settings.accumulation
        optimizer.step()
        ema.update()
        count += 1
        done = step + 1
        if done % settings.log_every == 0 or done == phase.steps:
            means = world.mean({k: v / count for k, v in sums.items()})
            elapsed = time.perf_counter() - started
            rate = count * phase.batch / max(elapsed, 1e-9)
            record = {"phase": phase.name, "step": done, "of": phase.steps, "samples_seen": done * phase.batch,
                      "samples_per_s": round(rate, 2), "s_per_step": round(elapsed / count, 4),
                      "eta_s": round((phase.steps - done) * elapsed / count, 1), "processes": world.size,
                      **{k: round(v, 6) for k, v in means.items()}}
            if world.is_main:
                log(json.dumps(record))
                with log_file.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            started, sums, count = time.perf_counter(), {}, 0
        if done % settings.save_every == 0 and done < phase.steps:
            state(done, complete=False)
    if end < phase.steps:
        if end % settings.save_every:
            state(end, complete=False)
        world.barrier()
        return False
    phase.net.eval()
    ema.copy_to_params()  # what goes on (next phase, checkpoint) is the average
    state(max(start, phase.steps), complete=True)
    world.barrier()
    return True
