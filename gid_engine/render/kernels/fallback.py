"""A fused kernel's first use is a trial: when it fails to compile or launch, the plain-torch path takes over.

A kernel can import and still fail on first use: Triton without a C compiler, a Windows build or an old
driver; numba on an unsupported CPU or a broken cache. Such a failure must not fail the render. The dispatch
points (splat.softmax_splat, SplatRenderer.render_chunk) run the kernel through `attempt`; the first failure
is warned about once, naming its cause, and that kernel is not tried again in this process. A kernel the
caller forced (backend="numba"/"triton") is run as asked, so its failure stays an error.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")
CAUSE_CHARS = 400  # compiler output can run to pages; the first of it names the cause

_failures: dict[str, str] = {}


class FusedKernelFallback(RuntimeWarning):
    """A fused kernel failed; the plain-torch path renders instead (same result, slower)."""


def failure(kernel: str) -> str | None:
    """Why `kernel` failed in this process, or None while it has not."""
    return _failures.get(kernel)


def failures() -> dict[str, str]:
    """kernel -> cause for every kernel that failed in this process."""
    return dict(_failures)


def reset() -> None:
    """Forget earlier failures (tests; a fixed installation in a long-lived process would otherwise stay on torch)."""
    _failures.clear()


def attempt(kernel: str, run: Callable[[], T], *, forced: bool = False) -> T | None:
    """run()'s result, or None when the caller should use the torch path: `kernel` failed now or before.

    Running out of memory is not a kernel failure (the torch path needs more) and propagates, as does any
    failure of a forced kernel.
    """
    if forced:
        return run()
    if kernel in _failures:
        return None
    try:
        return run()
    except torch.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - any compile or launch failure means "use torch"
        text = " ".join(str(error).split())
        cause = f"{type(error).__name__}: {text[:CAUSE_CHARS]}{'...' if len(text) > CAUSE_CHARS else ''}"
        _failures[kernel] = cause
        warnings.warn(f"GID: the fused {kernel} kernel failed ({cause}); the plain-torch path renders instead "
                      "from now on (same frames, slower)", FusedKernelFallback, stacklevel=3)
        return None
