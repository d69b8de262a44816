"""Motion sources: anything that turns a picture into a spectral volume.

A source has a `name` and `predict(image, *, seed, mask, intensity, progress) -> SpectralVolume`
(image [B, 3, H, W] in 0..1, mask [B or 1, 1, H, W] with 1 = may move). Built-in sources need no
weights; learned checkpoints load into the same interface.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch

from .prior import ProceduralPrior
from ..spectral.volume import SpectralVolume


class MotionSource(Protocol):
    name: str

    def predict(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None,
                intensity: float = 1.0, progress: Callable[[int, int], None] | None = None) -> SpectralVolume:
        ...


BUILTIN_PREFIX = "builtin: "
BUILTIN_SOURCES: dict[str, Callable[[], MotionSource]] = {
    BUILTIN_PREFIX + "procedural motion prior": ProceduralPrior,
}
DEFAULT_SOURCE = next(iter(BUILTIN_SOURCES))


def builtin_source(name: str) -> MotionSource:
    try:
        return BUILTIN_SOURCES[name]()
    except KeyError:
        raise ValueError(f"unknown built-in motion source {name!r}; known: {', '.join(BUILTIN_SOURCES)}") from None


class SavedVolumeSource:
    """Replays a saved spectral volume on any picture (resized to it): motion transfer without a model."""

    def __init__(self, volume: SpectralVolume, name: str):
        self.volume = volume
        self.name = name

    def predict(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None,
                intensity: float = 1.0, progress=None) -> SpectralVolume:
        b, _, h, w = image.shape
        if self.volume.batch not in (1, b):
            raise ValueError(f"saved volume {self.name} holds {self.volume.batch} motions for {b} pictures")
        volume = self.volume.resize(h, w).to(image.device)
        coeffs = volume.coeffs.expand(b, -1, -1, -1, -1) * intensity
        if mask is not None:
            coeffs = coeffs * mask.to(image.device, torch.float32).unsqueeze(1)
        if progress is not None:
            progress(b, b)
        return volume.replace(coeffs=coeffs.contiguous(), metadata={**volume.metadata, "source": self.name})
