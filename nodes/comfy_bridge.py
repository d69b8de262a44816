"""The few places the pack touches ComfyUI's runtime: devices, progress/cancel, model folders, checks."""
from __future__ import annotations

import copy
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import folder_paths

from ..gid_engine import checks, memory
from ..gid_engine.render.learned import LearnedRenderer

MODEL_FOLDER = "gid"
SAMPLE_PICTURE = Path(__file__).resolve().parent.parent / "samples" / "dandelion.jpg"
SAMPLE_INPUT_NAME = "gid_sample_dandelion.jpg"
SAMPLE_CLIP = SAMPLE_PICTURE.parent / "dandelion_sway.mp4"
SAMPLE_CLIP_INPUT_NAME = "gid_sample_dandelion_sway.mp4"


def register_model_folder() -> None:
    """Add models/gid without dropping paths a user's extra_model_paths.yaml already gave it."""
    folder_paths.add_model_folder_path(MODEL_FOLDER, os.path.join(folder_paths.models_dir, MODEL_FOLDER))
    paths, extensions = folder_paths.folder_names_and_paths[MODEL_FOLDER]
    # An empty set lists every file; keep the set object (others may hold it) and widen it in place.
    if isinstance(extensions, set):
        extensions.update({".safetensors", ".sft"})


def compute_device() -> torch.device:
    return mm.get_torch_device()


def output_device() -> torch.device:
    return mm.intermediate_device()


def progress_reporter(total: int):
    """progress(done, total) for the engine: drives the node's bar; raises on cancel (the hook does)."""
    bar = comfy.utils.ProgressBar(total)

    def report(done: int, new_total: int) -> None:
        bar.update_absolute(done, new_total)
        mm.throw_exception_if_processing_interrupted()

    return report


class UnlistedFile(ValueError):
    """A file name that is not one of a loader's listed files. The message is the same whether or not such a file
    exists anywhere, so a refused name reveals nothing about the disk."""


def listed_file(input_name: str, value, listing: Mapping[str, str | os.PathLike[str]]) -> Path:
    """The file behind a loader's combo value, only if the value is one of the names the loader lists now.

    ComfyUI does not check V3 combo values against their options, so a prompt can send any string (an absolute
    path, `../..`). Only an exact listed name is accepted, and its path must still lie lexically inside the
    folder it was listed from (the listing maps name -> (folder, relative name)); symlinks a user placed inside
    their own folders keep working.
    """
    entry = listing.get(value) if isinstance(value, str) else None
    if entry is not None:
        folder, relative = entry
        folder = os.path.abspath(folder)
        path = os.path.normpath(os.path.join(folder, relative))
        inside = not os.path.isabs(relative) and os.path.commonpath([folder, path]) == folder and path != folder
        if inside and os.path.isfile(path):
            return Path(path)
    shown = value if isinstance(value, str) and len(value) <= 200 else f"{str(value)[:200]}..."
    raise UnlistedFile(f"{input_name}: {shown!r} is not one of the files this node lists; pick one from the list "
                       "(refresh the page after adding files)")


def listing_check(input_name: str, value, listing: Mapping[str, tuple[str, str]]) -> bool | str:
    """A loader's validate_inputs: True for a listed name, else the refusal (shown when the prompt is queued)."""
    try:
        listed_file(input_name, value, listing)
    except UnlistedFile as refused:
        return str(refused)
    return True


def model_listing(folder_name: str) -> dict[str, tuple[str, str]]:
    """name -> (folder, relative name) for every file ComfyUI lists under a model folder (first folder wins, as
    ComfyUI's own lookup does)."""
    listing: dict[str, tuple[str, str]] = {}
    folders = folder_paths.get_folder_paths(folder_name)
    for name in folder_paths.get_filename_list(folder_name):
        for folder in folders:
            if os.path.isfile(os.path.join(folder, name)):
                listing.setdefault(name, (folder, name))
                break
    return listing


def check_image(name: str, image, min_size: int = 8) -> torch.Tensor:
    """An IMAGE batch [B, H, W, 3] of finite numbers, at least min_size pixels on each side."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] != 3 or image.shape[0] < 1:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name}: expected an IMAGE batch [B, H, W, 3], got {shape}")
    h, w = image.shape[1:3]
    if h < min_size or w < min_size:
        raise ValueError(f"{name}: the picture is {w}x{h} pixels; GID needs at least {min_size}x{min_size}")
    return checks.finite_tensor(name, image)


def check_mask(name: str, mask, image) -> torch.Tensor:
    """MASK [B or 1, H, W] in 0..1 matching the image's size -> [B or 1, H, W] float."""
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name}: expected a MASK [B, H, W], got {shape}")
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    b, h, w = image.shape[:3]
    if tuple(mask.shape[-2:]) != (h, w):
        raise ValueError(f"{name}: the mask is {mask.shape[-1]}x{mask.shape[-2]} but the image is {w}x{h}; "
                         "resize the mask to the image first")
    if mask.shape[0] not in (1, b):
        raise ValueError(f"{name}: {mask.shape[0]} masks for {b} images; give one mask or one per image")
    return checks.finite_tensor(name, mask.float(), minimum=0.0, maximum=1.0)


def comfy_budget(need_bytes: int, device: torch.device) -> int:
    """The engine's memory budget in ComfyUI (gid_engine.memory.Budget): the memory ComfyUI reports free on
    `device`, after asking it to unload cached models when the request needs more."""
    free = mm.get_free_memory(device)
    if need_bytes > free:
        mm.free_memory(need_bytes, device)  # cached models may be holding what the request needs
        free = mm.get_free_memory(device)
    return free


def require_memory(what: str, need_bytes: float, device: torch.device | None = None, hint: str = "") -> None:
    """For nodes whose stage takes no budget (file loads): refuse `what` up front, with the engine's error
    (memory.RequestTooLarge) and message, when its estimated need does not fit ComfyUI's budget."""
    memory.check_fits(what, need_bytes, device or compute_device(), comfy_budget, hint)


def install_sample_picture() -> None:
    """Put the shipped sample picture and clip in ComfyUI's input folder, so the shipped workflows open ready to run."""
    try:
        for source, name in ((SAMPLE_PICTURE, SAMPLE_INPUT_NAME), (SAMPLE_CLIP, SAMPLE_CLIP_INPUT_NAME)):
            target = Path(folder_paths.get_input_directory()) / name
            if not target.exists() and source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    except OSError as err:  # a read-only input folder must not stop the pack from loading
        logging.warning("GID: could not copy the sample picture into the input folder: %s", err)


def model_patcher(model: torch.nn.Module):
    """A ModelPatcher for one of the pack's networks: ComfyUI then loads it to the compute device on request and
    offloads it (Unload Models, free memory for another model) like any core model."""
    # ModelPatcher writes attributes such as .device onto the module it manages; a plain container keeps
    # those off the model (whose .device is read from its weights).
    holder = torch.nn.Module()
    holder.model = model
    return comfy.model_patcher.ModelPatcher(holder, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


class ManagedMotionModel:
    """A learned motion source under ComfyUI's memory management: loaded to the compute device when it predicts,
    offloadable by ComfyUI (Unload Models, free memory) in between, like any core model."""

    def __init__(self, model: torch.nn.Module):
        if mm.should_use_fp16(mm.get_torch_device()) and hasattr(model, "to"):
            model = model.to(dtype=torch.float16)
        self.model = model
        self.name = getattr(model, "name", type(model).__name__)
        self.patcher = model_patcher(model)

    def predict(self, image, **kwargs):
        mm.load_model_gpu(self.patcher)
        return self.model.predict(image, **kwargs)

    def with_options(self, **options) -> "ManagedMotionModel":
        """The model's own options interface; the copy shares the weights and their ModelPatcher."""
        other = copy.copy(self)
        other.model = self.model.with_options(**options)
        return other

    def estimate_bytes(self, batch: int, height: int, width: int) -> int:
        return self.model.estimate_bytes(batch, height, width)


def managed_source(source):
    """Torch-module sources go under memory management; procedural sources pass through."""
    return ManagedMotionModel(source) if isinstance(source, torch.nn.Module) else source


class ManagedRenderer:
    """A learned renderer under ComfyUI's memory management: loaded to the compute device for a render,
    offloadable by ComfyUI in between."""

    def __init__(self, renderer: LearnedRenderer):
        self.renderer = renderer
        self.name = renderer.name
        self.patcher = model_patcher(renderer.net)

    def loaded(self) -> LearnedRenderer:
        """The renderer with its weights on the compute device (ComfyUI frees memory for them if it must)."""
        mm.load_model_gpu(self.patcher)
        self.renderer.forget_features()  # features of an earlier render may sit on another device
        return self.renderer
