"""Files in models/gid: validated before use, safetensors only (never pickle)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

from .base import MotionSource, SavedVolumeSource
from ..spectral.volume import FORMAT_NAME as VOLUME_FORMAT, SpectralVolume

MOTION_MODEL_FORMAT = "gid.motion_ldm"


def read_safetensors_metadata(path: str | Path) -> dict:
    """Header metadata of a .safetensors file, with a clear error for anything that is not one."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path.name} is not a safetensors file (only {size} bytes)")
        header_len = struct.unpack("<Q", head)[0]
        if header_len > min(size - 8, 100 * 1024 * 1024):
            raise ValueError(f"{path.name} is not a valid safetensors file (header length {header_len} does not fit; "
                             "a pickle renamed to .safetensors, or a truncated download?)")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path.name} is not a valid safetensors file (unreadable header: {err})") from None
    end = max((info["data_offsets"][1] for key, info in header.items() if key != "__metadata__"), default=0)
    if 8 + header_len + end > size:
        raise ValueError(f"{path.name} is truncated: it needs {8 + header_len + end} bytes but has {size}")
    return header.get("__metadata__") or {}


def load_motion_source(path: str | Path) -> MotionSource:
    path = Path(path)
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise ValueError(f"{path.name}: GID files must be .safetensors (pickled checkpoints are never loaded)")
    meta = read_safetensors_metadata(path)
    kind = meta.get("format")
    if kind == VOLUME_FORMAT:
        return SavedVolumeSource(SpectralVolume.load(path), name=path.stem)
    if kind == MOTION_MODEL_FORMAT:
        from .ldm.model import GIDMotionModel  # torch modules load only when a learned model is asked for

        return GIDMotionModel.load(path)
    raise ValueError(f"{path.name} is a safetensors file but not a GID file (format={kind!r}); expected a "
                     f"{VOLUME_FORMAT} or {MOTION_MODEL_FORMAT} file")
