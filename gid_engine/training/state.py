"""Training state files (safetensors only): weights, EMA, optimizer and the global step, for --resume.

Nothing in them is per process: the step counts global batches, so a run resumes with any process count.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import formats


def save_state(path: Path, model: torch.nn.Module, ema, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.shadow.items()})
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().float().contiguous()
    meta = formats.TRAINING_STATE.metadata(optim_groups=json.dumps(opt["param_groups"]), ema_updates=str(ema.updates),
                                           **{k: str(v) for k, v in meta.items()})
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_state(path: Path) -> tuple[dict, dict, dict, dict]:
    """(metadata, model tensors, EMA tensors, optimizer state_dict) of a state file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        formats.TRAINING_STATE.check(meta, str(path))
        model, ema, state = {}, {}, {}
        for k in f.keys():
            group, rest = k.split(".", 1)
            if group == "model":
                model[rest] = f.get_tensor(k)
            elif group == "ema":
                ema[rest] = f.get_tensor(k)
            elif group == "optim":
                index, name = rest.split(".", 1)
                value = f.get_tensor(k)
                state.setdefault(int(index), {})[name] = value if name != "step" else value.reshape(())
    return meta, model, ema, {"state": state, "param_groups": json.loads(meta["optim_groups"])}
