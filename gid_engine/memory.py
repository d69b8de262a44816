"""Memory budgets: what a request will allocate, compared before anything is allocated.

Each stage that can be asked for arbitrarily large outputs owns an estimate of the bytes it will allocate
(loops.loop.loop_output_bytes, render.renderer.render_bytes) and checks it with `check_fits` against a
budget: a function that tells the bytes free for a request on a device. The engine's default budget asks the
operating system (or CUDA); a host passes its own (the nodes pass ComfyUI's, which first unloads cached
models). A request that does not fit is one error type with one message, stating the need and what is free,
instead of an allocator failure or a host killed for memory.
"""
from __future__ import annotations

from typing import Callable

import torch

# (bytes a request needs, device) -> bytes free for it there now, or None where that cannot be told.
Budget = Callable[[int, torch.device], "int | None"]


class RequestTooLarge(ValueError):
    """A request that needs more memory than is free for it; refused before anything is allocated."""


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


def free_bytes(need_bytes: int, device: torch.device) -> int | None:
    """The engine's own budget: what the system reports free on the device."""
    return available_bytes(device)


def check_fits(what: str, need_bytes: int, device: torch.device | str, budget: Budget = free_bytes,
               advice: str = "") -> None:
    """Raise RequestTooLarge when `need_bytes` exceeds what `budget` reports free on `device`."""
    device = torch.device(device)
    free = budget(int(need_bytes), device)
    if free is not None and need_bytes > free:
        raise RequestTooLarge(f"{what} needs about {gigabytes(need_bytes)} but only {gigabytes(free)} are free on "
                              f"{device}" + (f"; {advice}" if advice else ""))
