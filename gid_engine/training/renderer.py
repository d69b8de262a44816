"""The learned renderer's phase: (frame 0, frame t, flow 0->t, splat weight) from dataset pairs, L1 + gradient loss."""
from __future__ import annotations

import torch

from .dataset import PairDataset, TrainingPair
from ..render.learned_model import LearnedRendererNet
from ..render.renderer import DEFAULT_TEMPERATURE, importance_metric
from ..sources.ldm.vae import gradient_consistency
from ..spectral.motion import MotionTexture, displacement_at

# Weight of the multi-scale gradient term next to L1 (our choice; the VAE uses 0.2 for motion, edges in
# pictures matter more).
GRADIENT_WEIGHT = 0.5


def triple(pair: TrainingPair, j: int, temperature: float = DEFAULT_TEMPERATURE):
    """(picture, target frame, flow [2, H, W] from frame 0 to the target, metric [1, H, W]) of one stored frame.

    The flow is the pair's spectral volume at the frame's time minus at 0: the band-limited motion the renderer
    is given at inference; the metric is the one render_frames computes for that motion.
    """
    volume = pair.volume
    fields = displacement_at(volume, [float(pair.frame_times[j]), 0.0])  # [2, 1, 2, H, W]
    flow = (fields[0, 0] - fields[1, 0]).float()
    texture = MotionTexture.from_volume(volume, volume.period, volume.fps, loop=False, anchored=True)
    metric = importance_metric(texture, temperature)[0]
    return pair.image, pair.frames[j], flow, metric


class RendererTriples(torch.utils.data.Dataset):
    """Every stored target frame of every pair: (image, target, flow, metric)."""

    def __init__(self, pairs: PairDataset):
        self.pairs = pairs
        self.per_pair = int(pairs.manifest.get("frames_per_pair", 0))
        if self.per_pair < 1:
            raise ValueError(f"dataset {pairs.root} has no target frames for renderer training; rebuild it with "
                             "python -m gid_engine.data ... --frames-per-pair 4 (the default)")

    def __len__(self) -> int:
        return len(self.pairs) * self.per_pair

    def __getitem__(self, index: int):
        pair = self.pairs.pair(index // self.per_pair)
        if pair.frames is None or pair.frames.shape[0] != self.per_pair:
            raise ValueError(f"{self.pairs.files[index // self.per_pair]} does not hold the {self.per_pair} target "
                             "frames the manifest promises")
        return triple(pair, index % self.per_pair)


def renderer_loss(net: LearnedRendererNet, image, target, flow, metric, positions):
    pred = net(image, flow, metric).float()
    l1 = (pred - target).abs().mean()
    grad = gradient_consistency(pred, target)
    total = l1 + GRADIENT_WEIGHT * grad
    return total, {"loss": total.item(), "l1": l1.item(), "gradient": grad.item()}
