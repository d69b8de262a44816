"""TEMPORARY placeholder until the subjects branch merges (not to be committed)."""
import torch


def subject_mask(image: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(image[:, :1])
