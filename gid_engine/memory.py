"""Memory budgets: what a request will allocate, compared before anything is allocated.

Each stage that can be asked for arbitrarily large outputs exposes an estimate of the bytes it will
allocate (e.g. loops.loop.loop_output_bytes); `check_fits` turns "more than is free" into a clear error
that states the need and the limit instead of an allocator failure or a host killed for memory.
"""
from __future__ import annotations

import torch


class MemoryBudgetError(ValueError):
    """A request that needs more memory than the limit it runs under."""


def gigabytes(count: float) -> str:
    return f"{count / 1024 ** 3:.2f} GB"


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory free for new tensors on `device` now (None where it cannot be told)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits(what: str, need_bytes: int, limit_bytes: int | None, advice: str = "") -> None:
    """Raise MemoryBudgetError when `need_bytes` exceeds `limit_bytes` (None: no limit known)."""
    if limit_bytes is not None and need_bytes > limit_bytes:
        raise MemoryBudgetError(f"{what} needs about {gigabytes(need_bytes)} but the limit is "
                                f"{gigabytes(limit_bytes)}" + (f"; {advice}" if advice else ""))
