"""Checks of user-supplied values, shared by every stage, the nodes and the CLIs.

Each check raises ValueError whose message starts with the input's name, shows the value received and says
what is allowed, so the same words reach a ComfyUI user (values arriving through links skip the widgets'
min/max), an API caller and a CLI user. Nothing is clamped: a value outside the allowed range is an error.
"""
from __future__ import annotations

import dataclasses
import json
import math
from numbers import Integral, Real

import torch


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def json_value(name: str, value, hint: str = ""):
    """A widget's JSON value: a string is decoded (an error names the input, where the JSON breaks, and `hint`),
    anything else (an already decoded value arriving through a link or an API call) is returned as it is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno}){hint}") from None


def number(name: str, value, *, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, below: float | None = None) -> float:
    """A finite real number within [minimum, maximum] (inclusive) and (above, below) (exclusive)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name}: expected a number, got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {_shown(value)}")
    _check_range(name, value, minimum, maximum, above, below)
    return value


def integer(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number within [minimum, maximum] (a float with no fractional part is accepted)."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a whole number, got {_shown(value)}")
    if isinstance(value, Real) and not isinstance(value, Integral):
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise ValueError(f"{name}: expected a whole number, got {_shown(value)}")
        value = int(value)
    if not isinstance(value, Integral):
        raise ValueError(f"{name}: expected a whole number, got {_shown(value)}")
    value = int(value)
    _check_range(name, value, minimum, maximum, None, None)
    return value


def _bound(x) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _check_range(name, value, minimum, maximum, above, below) -> None:
    allowed = []
    if minimum is not None:
        allowed.append(f">= {_bound(minimum)}")
    if above is not None:
        allowed.append(f"> {_bound(above)}")
    if maximum is not None:
        allowed.append(f"<= {_bound(maximum)}")
    if below is not None:
        allowed.append(f"< {_bound(below)}")
    bad = ((minimum is not None and value < minimum) or (maximum is not None and value > maximum)
           or (above is not None and value <= above) or (below is not None and value >= below))
    if bad:
        raise ValueError(f"{name}: {_shown(value)} is out of range; allowed: {' and '.join(allowed)}")


# Tensors are checked this many elements at a time, so checking a 7 GB batch of frames allocates 16 MB, not 2 GB.
CHECK_CHUNK = 1 << 24


def _pieces(values: torch.Tensor):
    if values.is_contiguous() or values.ndim == 0:
        return values.reshape(-1).split(CHECK_CHUNK)
    return values.split(max(1, CHECK_CHUNK // max(1, values[0].numel())))


def finite_tensor(name: str, tensor: torch.Tensor, *, minimum: float | None = None,
                  maximum: float | None = None) -> torch.Tensor:
    """A tensor without NaN or infinity (complex tensors: in both parts), optionally within [minimum, maximum]."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor, got {type(tensor).__name__}")
    values = torch.view_as_real(tensor) if tensor.is_complex() else tensor
    ranged = minimum is not None or maximum is not None
    if not values.numel() or not (values.is_floating_point() or ranged):
        return tensor
    # One min/max pass finds both: NaN propagates into them and an infinity is one of them.
    bounds = [(float(b.min), float(b.max)) for b in map(torch.aminmax, _pieces(values))]
    if values.is_floating_point() and not all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in bounds):
        bad = sum(int((~torch.isfinite(piece)).sum()) for piece in _pieces(values))
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s); expected finite numbers")
    low, high = min(lo for lo, _ in bounds), max(hi for _, hi in bounds)
    if (minimum is not None and low < minimum) or (maximum is not None and high > maximum):
        allowed = " and ".join(([f">= {_bound(minimum)}"] if minimum is not None else [])
                               + ([f"<= {_bound(maximum)}"] if maximum is not None else []))
        raise ValueError(f"{name}: values span {low:g}..{high:g}; allowed: {allowed}")
    return tensor


@dataclasses.dataclass(frozen=True)
class Range:
    """An input's allowed range, declared once: a node's widget shows it (`widget()`), its code checks it
    (`check()`, also for values arriving through links, which skip the widget's limits)."""

    minimum: float
    maximum: float
    whole: bool = False  # a whole number (INT input)

    def check(self, name: str, value):
        if self.whole:
            return integer(name, value, minimum=int(self.minimum), maximum=int(self.maximum))
        return number(name, value, minimum=self.minimum, maximum=self.maximum)

    def widget(self) -> dict:
        return {"min": self.minimum, "max": self.maximum}


def choice(name: str, value, options) -> str:
    """One of a fixed set of names."""
    options = list(options)
    if value not in options:
        raise ValueError(f"{name}: unknown value {_shown(value)}; allowed: {', '.join(map(str, options))}")
    return value


def relative_path(name: str, value) -> str:
    """A relative path that stays inside its base folder: no absolute path, drive or `..` part."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: expected a file name prefix such as 'gid/loop', got {_shown(value)}")
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "\\", "~")) or (len(value) > 1 and value[1] == ":") or "\0" in value:
        raise ValueError(f"{name}: {_shown(value)} is an absolute path; allowed: a path relative to the output "
                         "folder, such as 'gid/loop'")
    if ".." in parts:
        raise ValueError(f"{name}: {_shown(value)} climbs out of the output folder with '..'; allowed: a path "
                         "inside it, such as 'gid/loop'")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """'WIDTHxHEIGHT' (as the CLIs' --size takes it) -> (height, width), each at least 8.

    Raises argparse.ArgumentTypeError, so argparse shows this message rather than a generic one."""
    from argparse import ArgumentTypeError

    try:
        width, height = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1024x576, got {text!r}") from None
    if width < 8 or height < 8:
        raise ArgumentTypeError(f"the size must be at least 8x8, got {text!r}")
    return height, width
