"""torch.distributed plumbing for training: process group, DDP, the sharded sampler, rank-0-only IO.

Launch with torchrun (it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); a plain `python -m` run is a
world of one with no process group. NCCL on CUDA, Gloo on CPU.

Data order is a function of the global step alone (GlobalBatches), not of the process count: step s uses
samples s*G .. s*G+G-1 of one seeded stream of epoch permutations (G = the global batch), and each process
takes its slice of them. torch's DistributedSampler deals indices out by rank, so its order changes with the
world size; with this sampler 1 process x batch G and N processes x G/N see the same samples, and a run
resumed with another process count continues the same stream from its step.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average per-process numbers (logs) over the world."""
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.size for k, v in zip(keys, t.tolist())}

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel over the parameters that require grad (a world of one: the module itself)."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: str | None = None) -> World:
    """The world this process is part of; initialises the process group under torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=size,
                                timeout=datetime.timedelta(minutes=30))
    return World(rank, size, local_rank, dev)


def no_sync(module: torch.nn.Module, skip: bool):
    """DDP's no_sync for the micro-steps of gradient accumulation that are not the last."""
    return module.no_sync() if skip and hasattr(module, "no_sync") else contextlib.nullcontext()


class GlobalBatches(torch.utils.data.Sampler):
    """Yields, for each (step, micro-step) from `start_step` on, this rank's list of (sample index, stream position).

    The stream position identifies a sample draw across the whole run (its noise and augmentation are seeded
    from it), so every random choice is the same whatever the world size or accumulation split.
    """

    def __init__(self, length: int, global_batch: int, world: World, accumulation: int, seed: int, start_step: int):
        per_step = world.size * accumulation
        if length < 1:
            raise ValueError("the dataset is empty")
        if global_batch % per_step:
            raise ValueError(f"batch: the global batch {global_batch} must be a multiple of processes x accumulation "
                             f"= {world.size} x {accumulation}")
        self.length, self.global_batch, self.world, self.accumulation = length, global_batch, world, accumulation
        self.micro = global_batch // per_step
        self.seed, self.start_step = seed, start_step
        self._epoch, self._order = -1, None

    def index(self, position: int) -> int:
        epoch, within = divmod(position, self.length)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(self.length, generator=g)
        return int(self._order[within])

    def __iter__(self):
        step = self.start_step
        while True:
            for micro in range(self.accumulation):
                first = step * self.global_batch + (micro * self.world.size + self.world.rank) * self.micro
                yield [(self.index(p), p) for p in range(first, first + self.micro)]
            step += 1

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return 1 << 62


class Positioned(torch.utils.data.Dataset):
    """Dataset items (index, position) -> (*item, position)."""

    def __init__(self, data: torch.utils.data.Dataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key):
        index, position = key
        return (*self.data[index], position)


def sample_generator(seed: int, position: int) -> torch.Generator:
    """The generator of one sample draw (see GlobalBatches)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + int(position)) % (1 << 63))
