"""Files in models/gid: validated before use, safetensors only (never pickle)."""
from __future__ import annotations

from pathlib import Path

from .base import MotionSource, SavedVolumeSource
from .ldm.model import MOTION_MODEL_FORMAT, GIDMotionModel
from .safetensors_header import read_metadata
from ..spectral.volume import FORMAT_NAME as VOLUME_FORMAT, SpectralVolume


def load_motion_source(path: str | Path) -> MotionSource:
    path = Path(path)
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise ValueError(f"{path.name}: GID files must be .safetensors (pickled checkpoints are never loaded)")
    kind = read_metadata(path).get("format")
    if kind == VOLUME_FORMAT:
        return SavedVolumeSource(SpectralVolume.load(path), name=path.stem)
    if kind == MOTION_MODEL_FORMAT:
        return GIDMotionModel.load(path)
    raise ValueError(f"{path.name} is a safetensors file but not a GID file (format={kind!r}); expected a "
                     f"{VOLUME_FORMAT} or {MOTION_MODEL_FORMAT} file")
