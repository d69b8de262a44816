"""What ComfyUI's runtime provides to a node, faked for in-process tests: devices, free memory, model loading,
the interrupt flag (comfy.model_management), ModelPatcher, the progress bar. Everything else the pack imports
(comfy_api's V3 schema, folder_paths pointed at a temp folder, comfy.cli_args) is ComfyUI's own code.

Installed into sys.modules before the pack is imported, as ComfyUI's unit tests do for the modules they keep
out (tests-unit/comfy_extras_test mock `nodes` and `server`).
"""
from __future__ import annotations

import sys
import types

import torch

GIB = 1024 ** 3


class Runtime:
    """The state a test sets and reads: free memory, the interrupt flag, models loaded, progress reported."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.free_bytes = 64 * GIB
        self.interrupt_after_updates: int | None = None  # raise the interrupt at the n-th progress check
        self.interrupt_checks = 0
        self.loaded: list = []  # ModelPatchers passed to load_model(s)_gpu, in order
        self.freed: list[float] = []  # bytes ComfyUI was asked to free
        self.progress: list[tuple[int, int]] = []  # (value, total) of every progress bar update


runtime = Runtime()


class InterruptProcessingException(Exception):
    """ComfyUI's cancel signal (Cancel button / POST /interrupt)."""


def _model_management() -> types.ModuleType:
    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = InterruptProcessingException
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.intermediate_device = lambda: torch.device("cpu")
    mm.unet_offload_device = lambda: torch.device("cpu")
    mm.should_use_fp16 = lambda device=None, model_params=0, prioritize_performance=True, manual_cast=False: False
    mm.get_free_memory = lambda dev=None, torch_free_too=False: runtime.free_bytes

    def free_memory(memory_required, device, keep_loaded=()):
        runtime.freed.append(memory_required)

    def load_models_gpu(models, memory_required=0, **_):
        runtime.loaded.extend(models)

    def throw_exception_if_processing_interrupted():
        runtime.interrupt_checks += 1
        if runtime.interrupt_after_updates is not None and runtime.interrupt_checks >= runtime.interrupt_after_updates:
            raise InterruptProcessingException()

    mm.free_memory = free_memory
    mm.load_models_gpu = load_models_gpu
    mm.load_model_gpu = lambda model: load_models_gpu([model])
    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    return mm


class ModelPatcher:
    """The part of comfy.model_patcher.ModelPatcher the pack uses: holds a module and its two devices."""

    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.model, self.load_device, self.offload_device = model, load_device, offload_device


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total = total

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        runtime.progress.append((value, self.total))


def install(comfyui_dir: str) -> None:
    """Make ComfyUI's own modules importable (after the repo's, so `nodes` stays ours) and put the fakes in."""
    if comfyui_dir not in sys.path:
        sys.path.append(comfyui_dir)
    import comfy
    import comfy.utils

    patcher = types.ModuleType("comfy.model_patcher")
    patcher.ModelPatcher = ModelPatcher
    for name, module in (("comfy.model_management", _model_management()), ("comfy.model_patcher", patcher)):
        sys.modules[name] = module
        setattr(comfy, name.split(".")[1], module)
    comfy.utils.ProgressBar = ProgressBar
