"""The in-process node harness: the pack imported as ComfyUI imports it, and nodes driven as its executor does."""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
import types
from pathlib import Path

import comfy_fakes

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK = "gid_pack"  # the pack's package name here (ComfyUI names it after its folder)


def comfyui_dir() -> Path:
    return Path(os.environ.get("GID_COMFYUI_DIR", REPO_ROOT / ".comfyui"))


def import_pack(folders: dict[str, Path]) -> types.ModuleType:
    """The pack's `nodes` package with ComfyUI's runtime faked and its folders under `folders`."""
    comfy_fakes.install(str(comfyui_dir()))
    import folder_paths

    folder_paths.set_input_directory(str(folders["input"]))
    folder_paths.set_output_directory(str(folders["output"]))
    folder_paths.set_temp_directory(str(folders["temp"]))
    folder_paths.models_dir = str(folders["models"])
    if PACK not in sys.modules:
        package = types.ModuleType(PACK)
        package.__path__ = [str(REPO_ROOT)]
        sys.modules[PACK] = package
        share_engine()
    nodes = importlib.import_module(f"{PACK}.nodes")
    nodes.comfy_bridge.register_model_folder()
    return nodes


def share_engine() -> None:
    """The pack's `..gid_engine` imports get the engine the engine tests use: the same classes, and numba's
    compiled kernels cached under those module names (a module's first compile under a new name takes minutes
    on two cores)."""
    import gid_engine

    sys.modules[f"{PACK}.gid_engine"] = gid_engine
    for module in pkgutil.walk_packages(gid_engine.__path__, "gid_engine."):
        if not module.name.endswith("__main__"):
            sys.modules[f"{PACK}.{module.name}"] = importlib.import_module(module.name)


def engine(module: str):
    """A gid_engine module, the one the pack's nodes use."""
    return importlib.import_module(f"gid_engine.{module}")


def widget_defaults(node) -> dict:
    """Each widget input's default, as the frontend fills them in."""
    info = node.INPUT_TYPES()
    defaults = {}
    for section in ("required", "optional"):
        for name, spec in info.get(section, {}).items():
            if len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1] and not spec[1].get("forceInput"):
                defaults[name] = spec[1]["default"]
    return defaults


def run_node(node, hidden: dict | None = None, **inputs):
    """Queue-time validation, then execution, the way ComfyUI's executor drives a V3 node (defaults for the
    widgets not given). A validation refusal raises ValueError with the node's message."""
    node.VALIDATE_CLASS()
    inputs = {**widget_defaults(node), **inputs}
    if "validate_inputs" in node.__dict__:
        signature = inspect.signature(node.validate_inputs)
        takes_all = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        given = inputs if takes_all else {k: v for k, v in inputs.items() if k in signature.parameters}
        verdict = node.validate_inputs(**given)
        if verdict is not True:
            raise ValueError(verdict)
    return node.PREPARE_CLASS_CLONE(hidden or {}).EXECUTE_NORMALIZED(**inputs)
