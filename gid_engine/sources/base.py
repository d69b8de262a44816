"""Motion sources: anything that turns a picture into a spectral volume.

A source has a `name`, `predict(image, *, seed, mask, intensity, progress) -> SpectralVolume`
(image [B, 3, H, W] in 0..1, mask [B or 1, 1, H, W] with 1 = may move), `with_options(**options)`
(a copy that applies the options it takes and refuses any other option set away from its neutral value)
and `estimate_bytes(batch, height, width)` (memory a prediction needs, checked before it starts).
Built-in sources need no weights; learned checkpoints load into the same interface.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Callable, Protocol

import torch

from .. import checks
from ..imageops import work_size
from .prior import DEFAULT_PRESET, OUTPUT_LONG_SIDE, PRESETS, ProceduralPrior
from .prior.brush import parse_motion_brush
from ..spectral.overlay import mobility_map
from ..spectral.volume import SpectralVolume

COMPLEX64_BYTES = 8


class MotionSource(Protocol):
    name: str

    def predict(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None,
                intensity: float = 1.0, progress: Callable[[int, int], None] | None = None) -> SpectralVolume:
        ...

    def with_options(self, **options) -> "MotionSource":
        ...

    def estimate_bytes(self, batch: int, height: int, width: int) -> int:
        ...


@dataclasses.dataclass(frozen=True)
class SourceOption:
    """An option some motion source takes. `neutral` asks nothing of a source (every source accepts it);
    `applies_to` says, in a refusal, which sources use it."""

    name: str
    neutral: object
    applies_to: str
    # Values that ask nothing either (e.g. an empty brush written as {}); default: only `neutral` itself.
    asks_nothing: Callable[[object], bool] | None = None

    def is_neutral(self, value) -> bool:
        if self.asks_nothing is not None:
            return self.asks_nothing(value)
        return value == self.neutral


def _empty_brush(value) -> bool:
    try:
        return parse_motion_brush(value).is_empty
    except ValueError:
        return False


# The vocabulary of source options (what a host may forward); each source applies those it takes.
SOURCE_OPTIONS = {option.name: option for option in (
    SourceOption("preset", DEFAULT_PRESET, "only applies to the built-in procedural prior"),
    SourceOption("motion_brush", "", "is read by the built-in procedural prior only (to still a region of another "
                 "source's motion, use the mask input)", _empty_brush),
    SourceOption("steps", 0, "only learned checkpoints sample with diffusion"),
    SourceOption("cfg", 0.0, "only learned checkpoints sample with diffusion"),
    SourceOption("loop_guidance", 0.0, "only learned checkpoints sample with diffusion"),
)}


def split_options(source_name: str, options: Mapping[str, object], takes: Iterable[str]) -> dict[str, object]:
    """The options a source takes; any other option must be at its neutral value (an error naming it if not)."""
    takes = set(takes)
    for name, value in options.items():
        if name in takes:
            continue
        option = SOURCE_OPTIONS.get(name)
        if option is None:
            raise ValueError(f"{name}: not an option of any motion source; known: {', '.join(SOURCE_OPTIONS)}")
        if not option.is_neutral(value):
            raise ValueError(f"{name}: {checks._shown(value)} {option.applies_to}; {source_name} does not use it, "
                             f"so set {name} to {option.neutral if option.neutral != '' else 'an empty value'}")
    return {name: value for name, value in options.items() if name in takes}


def volume_bytes(batch: int, bins: int, height: int, width: int) -> int:
    """Bytes of a complex64 spectral volume [B, K, 2, H, W]."""
    return batch * bins * 2 * height * width * COMPLEX64_BYTES


@dataclasses.dataclass(frozen=True)
class PriorSource(ProceduralPrior):
    """The procedural prior as a motion source: its option is the preset (the motion character)."""

    # Peak bytes per output pixel and bin beyond the volume itself: the final upsample of the work-grid
    # coefficients and the mask multiply each hold one more volume-sized tensor.
    SCRATCH_VOLUMES = 2

    def with_options(self, **options) -> "PriorSource":
        own = split_options(self.name, options, ("preset", "motion_brush"))
        changes = {}
        if "preset" in own:
            changes["preset"] = checks.choice("preset", own["preset"], PRESETS)
        if "motion_brush" in own:
            changes["brush"] = parse_motion_brush(own["motion_brush"])
        return dataclasses.replace(self, **changes) if changes else self

    def estimate_bytes(self, batch: int, height: int, width: int) -> int:
        # the volume comes at the picture's size up to OUTPUT_LONG_SIDE (larger pictures get a smaller grid)
        height, width = work_size(height, width, OUTPUT_LONG_SIDE)
        return (1 + self.SCRATCH_VOLUMES) * volume_bytes(batch, self.num_bins, height, width)


def predict_with_mobility(source: MotionSource, image: torch.Tensor, **predict_options
                          ) -> tuple[SpectralVolume, torch.Tensor]:
    """Any source's volume with its mobility [B, 1, H, W] in 0..1: the source's own estimate where it has one
    (the procedural prior), else how much each pixel moves relative to the picture's moving parts."""
    own = getattr(source, "predict_with_mobility", None)
    if own is not None:
        return own(image, **predict_options)
    volume = source.predict(image, **predict_options)
    mobility = mobility_map(volume.resize(image.shape[-2], image.shape[-1]) if
                            (volume.height, volume.width) != tuple(image.shape[-2:]) else volume)
    return volume, mobility.to(image.device)


BUILTIN_PREFIX = "builtin: "
BUILTIN_SOURCES: dict[str, Callable[[], MotionSource]] = {
    BUILTIN_PREFIX + "procedural motion prior": PriorSource,
}
DEFAULT_SOURCE = next(iter(BUILTIN_SOURCES))


def builtin_source(name: str) -> MotionSource:
    try:
        return BUILTIN_SOURCES[name]()
    except KeyError:
        raise ValueError(f"unknown built-in motion source {name!r}; known: {', '.join(BUILTIN_SOURCES)}") from None


class SavedVolumeSource:
    """Replays a saved spectral volume on any picture (resized to it): motion transfer without a model.
    It takes no options: the motion is the file's."""

    def __init__(self, volume: SpectralVolume, name: str):
        self.volume = volume
        self.name = name

    def with_options(self, **options) -> "SavedVolumeSource":
        split_options(self.name, options, ())
        return self

    def estimate_bytes(self, batch: int, height: int, width: int) -> int:
        # the resized volume, its expansion to the batch scaled by the intensity, and the masked copy
        return volume_bytes(1, self.volume.num_bins, height, width) + 2 * volume_bytes(
            batch, self.volume.num_bins, height, width)

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
