"""Checks of user-supplied values, shared by every stage, the nodes and the CLIs.

Each check raises ValueError whose message starts with the input's name, shows the value received and says
what is allowed, so the same words reach a ComfyUI user (values arriving through links skip the widgets'
min/max), an API caller and a CLI user. Nothing is clamped: a value outside the allowed range is an error.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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


def finite_tensor(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """A tensor without NaN or infinity (complex tensors: in both parts)."""
    values = torch.view_as_real(tensor) if tensor.is_complex() else tensor
    if values.is_floating_point() and not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s); expected finite numbers")
    return tensor


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
