"""Exponential moving average of the trained weights; checkpoints carry the average, not the last step."""
from __future__ import annotations

import torch


class EMA:
    """Average of `params` with decay min(decay, (1 + n) / (10 + n)) at update n (the usual warm-up, so a short
    run is not dominated by its random initialisation)."""

    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float, updates: int = 0):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.params, self.decay, self.updates = params, decay, updates
        self.shadow = {name: p.detach().float().clone() for name, p in params.items()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in self.params.items():
            self.shadow[name].mul_(d).add_(p.detach().float(), alpha=1 - d)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        for name, p in self.params.items():
            p.copy_(self.shadow[name].to(p.dtype))

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        if set(tensors) != set(self.shadow):
            raise ValueError("the saved EMA does not hold the same weights as the model being trained")
        for name, value in tensors.items():
            self.shadow[name].copy_(value)
