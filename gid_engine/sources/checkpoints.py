"""Files in models/gid: validated before use, safetensors only (never pickle)."""
from __future__ import annotations

from pathlib import Path

from .. import formats
from ..spectral.volume import SpectralVolume
from .base import MotionSource, SavedVolumeSource
from .ldm.model import GIDMotionModel


def load_motion_source(path: str | Path) -> MotionSource:
    path = Path(path)
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise ValueError(f"{path.name}: GID files must be .safetensors (pickled checkpoints are never loaded)")
    metadata = formats.read_header(path).metadata
    if formats.SPECTRAL_VOLUME.marks(metadata):
        return SavedVolumeSource(SpectralVolume.load(path), name=path.stem)
    if formats.MOTION_MODEL.marks(metadata):
        return GIDMotionModel.load(path)
    raise ValueError(f"{path.name} is a safetensors file but not a GID file (format={metadata.get('format')!r}); "
                     f"expected a {formats.SPECTRAL_VOLUME.name} or {formats.MOTION_MODEL.name} file")
