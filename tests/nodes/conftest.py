"""In-process node tests: the pack's node classes run in this process, with only ComfyUI's runtime faked
(comfy_fakes.py) and folder_paths pointed at a temp folder. Seconds, not a server start."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import comfy_fakes  # noqa: E402
from node_harness import comfyui_dir, import_pack  # noqa: E402


@pytest.fixture(scope="session")
def comfy_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("comfy")
    folders = {name: root / name for name in ("input", "output", "temp", "models")}
    for folder in folders.values():
        folder.mkdir()
    return folders


@pytest.fixture(scope="session")
def pack(comfy_folders) -> types.ModuleType:
    """The pack's `nodes` package, imported as ComfyUI imports a custom-node pack (a package named after it)."""
    if not (comfyui_dir() / "comfy_api").is_dir():
        pytest.skip(f"no ComfyUI source at {comfyui_dir()} (scripts/bootstrap.sh installs it; or set GID_COMFYUI_DIR)")
    return import_pack(comfy_folders)


@pytest.fixture(autouse=True)
def runtime() -> comfy_fakes.Runtime:
    comfy_fakes.runtime.reset()
    return comfy_fakes.runtime
