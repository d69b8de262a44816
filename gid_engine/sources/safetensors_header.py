"""The header of a .safetensors file, read and checked without loading any tensor (a leaf module: every loader
uses it before it builds or allocates anything)."""
from __future__ import annotations

import dataclasses
import json
import math
import struct
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
