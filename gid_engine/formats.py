"""The pack's files, on the ground floor of the engine: every loader reads and checks here, before it builds
or allocates anything.

- read_header: a .safetensors file's metadata and tensor entries, checked without loading a tensor.
- FileFormat: a file kind's name and version as written into its metadata, and the one check of both.
- read_config: the one reader of a dataclass config from JSON (model, renderer and normalization configs,
  sampling options): unknown, missing or mistyped keys are errors that name the key, then the class's own
  validate() runs.
"""
from __future__ import annotations

import dataclasses
import json
import math
import struct
import typing
from collections.abc import Mapping
from pathlib import Path

# Real GID headers are a few hundred KB at most (one entry per tensor plus the config); a larger declared
# header is damage or an attempt to make the reader allocate.
MAX_HEADER_BYTES = 16 * 1024 * 1024
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclasses.dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class SafetensorsHeader:
    metadata: dict[str, str]
    tensors: dict[str, TensorEntry]


def read_header(path: str | Path) -> SafetensorsHeader:
    """Metadata and tensor entries of a .safetensors file; a clear error for anything that is not a whole,
    consistent one (too short, a pickle renamed, a huge declared header, truncated data, entries whose
    shapes do not match their byte ranges)."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path.name} is not a safetensors file (only {size} bytes)")
        header_len = struct.unpack("<Q", head)[0]
        if header_len > min(size - 8, MAX_HEADER_BYTES):
            raise ValueError(f"{path.name} is not a valid safetensors file (header length {header_len} does not fit "
                             f"in the file or exceeds {MAX_HEADER_BYTES} bytes; a pickle renamed to .safetensors, "
                             "or a truncated download?)")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path.name} is not a valid safetensors file (unreadable header: {err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} is not a valid safetensors file (the header is not an object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"{path.name} is not a valid safetensors file (metadata must map names to strings)")
    tensors: dict[str, TensorEntry] = {}
    end = 0
    for key, info in header.items():
        tensors[key] = _entry(path.name, key, info)
        end = max(end, info["data_offsets"][1])
    if 8 + header_len + end > size:
        raise ValueError(f"{path.name} is truncated: it needs {8 + header_len + end} bytes but has {size}")
    return SafetensorsHeader(metadata, tensors)


def _entry(file: str, key: str, info) -> TensorEntry:
    bad = f"{file} is not a valid safetensors file (tensor {key!r}: "
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(bad + "needs exactly dtype, shape and data_offsets)")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPE_BYTES:
        raise ValueError(bad + f"unknown dtype {dtype!r})")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError(bad + f"shape must be a list of non-negative integers, got {str(shape)[:80]})")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in offsets)
            or offsets[1] < offsets[0]):
        raise ValueError(bad + f"bad data_offsets {str(offsets)[:80]})")
    if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise ValueError(bad + f"shape {shape} of {dtype} does not match its {offsets[1] - offsets[0]} bytes)")
    return TensorEntry(dtype, tuple(shape))


def read_metadata(path: str | Path) -> dict[str, str]:
    return read_header(path).metadata


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """A kind of file: the "format" (and "version", unless None) its metadata carries."""

    name: str
    version: str | None
    description: str  # what a user calls it: "GID renderer checkpoint"
    hint: str = ""  # how to get a right one

    def metadata(self, **fields: str) -> dict[str, str]:
        """The metadata that marks a file of this kind, with `fields` after it."""
        marks = {"format": self.name} if self.version is None else {"format": self.name, "version": self.version}
        return {**marks, **fields}

    def marks(self, metadata: Mapping) -> bool:
        """Whether `metadata` says this kind of file (in any version; check() tells whether this pack reads it)."""
        return metadata.get("format") == self.name

    def check(self, metadata: Mapping, file_name: str) -> None:
        """ValueError naming the file unless `metadata` marks this kind, in the version this pack reads."""
        found = metadata.get("format")
        if not self.marks(metadata):
            raise ValueError(f"{file_name} is not a {self.description} (format={found!r}, expected {self.name!r}"
                             + (f"; {self.hint})" if self.hint else ")"))
        if self.version is not None and str(metadata.get("version")) != self.version:
            raise ValueError(f"{file_name}: {self.description} version {metadata.get('version')!r} is not supported "
                             f"(this pack reads version {self.version})")

    def read(self, path: str | Path) -> SafetensorsHeader:
        """The header of a .safetensors file of this kind (checked as read_header does, then check())."""
        header = read_header(path)
        self.check(header.metadata, Path(path).name)
        return header


SPECTRAL_VOLUME = FileFormat("gid.spectral_volume", "1", "GID spectral volume file")
MOTION_MODEL = FileFormat("gid.motion_ldm", "1", "GID motion model")
RENDERER = FileFormat("gid.renderer", "1", "GID renderer checkpoint",
                      "train one with python -m gid_engine.train --phases renderer")
TRAINING_STATE = FileFormat("gid.train_state", None, "GID training state file")
TRAINING_PAIR = FileFormat("gid.training_pair", None, "GID training pair")
DATASET = FileFormat("gid.dataset", "1", "GID dataset manifest", "build one with python -m gid_engine.data")

Config = typing.TypeVar("Config")


def read_config(cls: type[Config], text: str, where: str = "config", *, defaults: bool = False) -> Config:
    """A `cls` dataclass from JSON text; `defaults`: missing keys keep the class's defaults (else an error).
    Nested dataclasses, bool, int, float and tuples of int or float fields are read; then cls.validate() or
    cls.check(), where the class has one, checks the values together."""
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where} is not JSON: {err}") from None
    return _build(cls, data, where, defaults)


def _build(cls, data, where: str, defaults: bool):
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    values = {}
    for name in fields:
        if name not in data:
            if defaults:
                continue
            raise ValueError(f"{where}.{name} is missing")
        values[name] = _value(hints[name], data[name], f"{where}.{name}", defaults)
    config = cls(**values)
    for method in ("validate", "check"):
        if hasattr(config, method):
            return getattr(config, method)()
    return config


def _value(kind, value, where: str, defaults: bool):
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, where, defaults)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {value!r}")
        return tuple(_value(item, v, where + " entries", defaults) for v in value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
        return value
    if kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    raise TypeError(f"read_config cannot read {where} of type {kind}")  # a new field type: teach _value
