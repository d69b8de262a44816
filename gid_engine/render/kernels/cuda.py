"""Fused softmax splatting on CUDA with Triton (which ships with CUDA builds of torch).

Three launches per call: (per-target shift only) each target's largest contributing metric by atomic max,
the splat itself by atomic adds into a canvas of C + 2 channels (features, weight, coverage), and the
normalisation. Under TRITON_INTERPRET=1 the same kernels run on CPU tensors, which is how they are tested
on machines without a GPU. Triton is imported on first use only, so importing the pack stays cheap.
"""
from __future__ import annotations

import os

import torch

IMPORT_ERROR: str | None = None
_kernels = None


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _load():
    global _kernels, IMPORT_ERROR
    if _kernels is None and IMPORT_ERROR is None:
        try:
            from . import triton_splat
        except Exception as error:  # noqa: BLE001 - any import failure means "fall back to torch"
            IMPORT_ERROR = f"{type(error).__name__}: {error}"
        else:
            _kernels = triton_splat
    return _kernels


def available(device: str) -> bool:
    """Whether the Triton kernels can run on tensors of this device type."""
    if device == "cuda" or (device == "cpu" and interpreted()):
        return _load() is not None
    return False


def softmax_splat(features: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor, exp_z: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused operator on CUDA tensors (see cpu.softmax_splat for the arguments)."""
    return _load().softmax_splat(features, flow, metric, exp_z)
