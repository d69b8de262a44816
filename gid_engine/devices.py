"""Which torch device the engine computes on, and the --device option every CLI shares."""
from __future__ import annotations

import argparse

import torch

AUTO = "auto"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve(name: str, input_name: str = "device") -> torch.device:
    """"auto" (CUDA when torch sees a GPU, else CPU) or a torch device name that can run here: cpu, cuda, cuda:N,
    mps. A device this machine lacks is an error rather than a silent switch to the CPU."""
    if name == AUTO:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{input_name}: {name!r} is not a device; expected auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "torch sees no CUDA GPU"
            raise ValueError(f"{input_name}: {name!r} asked for a CUDA GPU but {why}; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{input_name}: {name!r} does not exist; this machine has {torch.cuda.device_count()} "
                             "CUDA device(s), cuda:0 to cuda:N-1")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{input_name}: {name!r} asked for Apple's MPS, which this machine or torch lacks")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{input_name}: {name!r} is not supported; expected auto, cpu, cuda, cuda:N or mps")
    return device


def _checked_name(name: str) -> str:
    try:
        resolve(name, "--device")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


def add_argument(parser: argparse.ArgumentParser, note: str = "") -> None:
    """--device NAME (default auto), checked when the command line is parsed; resolve(args.device) gives the
    torch device."""
    parser.add_argument("--device", type=_checked_name, default=AUTO,
                        help="torch device: auto (cuda when present, else cpu), cpu, cuda, cuda:N or mps" + note)
