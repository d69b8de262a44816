"""The learned renderer's network (paper section 4): feature pyramid -> softmax splat at every scale -> synthesis.

See gid_engine/render/learned.py for the choices the paper leaves open and for loading checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import math

import torch
import torch.nn.functional as F
from torch import nn

from .renderer import fill_holes
from .splat import softmax_splat


@dataclasses.dataclass(frozen=True)
class RendererConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)  # feature channels at scale 1, 1/2, 1/4, ...
    blocks: tuple[int, ...] = (3, 4, 6, 3)  # residual blocks per scale (ResNet-34's stages)

    def validate(self) -> "RendererConfig":
        if not self.widths or len(self.widths) != len(self.blocks):
            raise ValueError(f"renderer config: widths {list(self.widths)} and blocks {list(self.blocks)} must be "
                             "non-empty lists of the same length (one entry per scale)")
        if (len(self.widths) > 6 or any(not 1 <= w <= 1024 for w in self.widths)
                or any(not 1 <= b <= 32 for b in self.blocks)):
            raise ValueError(f"renderer config: at most 6 scales, widths 1..1024 and blocks 1..32, got widths "
                             f"{list(self.widths)}, blocks {list(self.blocks)}")
        return self

    @property
    def scales(self) -> int:
        return len(self.widths)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


RENDERER_CONFIGS = {
    # Trains in a few minutes on two CPU cores at 64x64.
    "tiny": RendererConfig(widths=(16, 24, 32), blocks=(1, 1, 1)),
    # ResNet-34's block counts and widths halved (the paper gives neither).
    "paper": RendererConfig(),
}


class ResidualBlock(nn.Module):
    """ResNet basic block without normalization (every sample is its own: batch splits do not change results)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else nn.Identity()
        # Residual branches start small so a deep stack begins close to identity (no normalization to tame it).
        nn.init.normal_(self.conv2.weight, std=0.1 / math.sqrt(9 * cout))
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.skip(x) + self.conv2(F.relu(self.conv1(x))))


class FeatureEncoder(nn.Module):
    """Picture -> features at scale 1, 1/2, 1/4, ... (the first scale keeps the picture's own resolution)."""

    def __init__(self, cfg: RendererConfig):
        super().__init__()
        self.stem = nn.Conv2d(3, cfg.widths[0], 3, padding=1)
        stages = []
        cin = cfg.widths[0]
        for level, (width, count) in enumerate(zip(cfg.widths, cfg.blocks)):
            blocks = [ResidualBlock(cin, width, stride=1 if level == 0 else 2)]
            blocks += [ResidualBlock(width, width) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.ModuleList(stages)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.stem(image * 2 - 1))
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class SynthesisDecoder(nn.Module):
    """Splatted pyramid (+ coverage per scale) -> a residual on the hole-filled splatted picture, coarse to fine."""

    def __init__(self, cfg: RendererConfig):
        super().__init__()
        w = cfg.widths
        # Inputs per scale: its splatted features and coverage; scale 0 also the splatted and filled picture (6).
        self.merge = nn.ModuleList()
        self.refine = nn.ModuleList()
        for level in reversed(range(cfg.scales)):
            cin = w[level] + 1 + (6 if level == 0 else 0) + (w[level + 1] if level + 1 < cfg.scales else 0)
            self.merge.append(nn.Conv2d(cin, w[level], 3, padding=1))
            self.refine.append(ResidualBlock(w[level], w[level]))
        self.out = nn.Conv2d(w[0], 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # starts as the hole-filled softmax splat of the picture
        nn.init.zeros_(self.out.bias)

    def forward(self, splats: list[torch.Tensor], coverages: list[torch.Tensor], picture: torch.Tensor) -> torch.Tensor:
        x = None
        for index, level in enumerate(reversed(range(len(splats)))):
            parts = [splats[level], coverages[level].clamp(max=4) / 4]
            if level == 0:
                parts.append(picture)
            if x is not None:
                parts.append(F.interpolate(x, size=splats[level].shape[-2:], mode="bilinear", align_corners=False))
            x = self.refine[index](F.relu(self.merge[index](torch.cat(parts, dim=1))))
        return self.out(x)


def resample_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Flow [N, 2, H, W] in pixels -> the same motion on a grid of `size`, in that grid's pixels."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="area") if (h, w) != size else flow
    return out * torch.tensor([size[1] / w, size[0] / h], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)


class LearnedRendererNet(nn.Module):
    def __init__(self, cfg: RendererConfig):
        super().__init__()
        self.config = cfg.validate()
        self.encoder = FeatureEncoder(cfg)
        self.decoder = SynthesisDecoder(cfg)
        # The splat weight is the given metric times exp(this): it starts as the training-free renderer's and
        # training may sharpen or soften who wins overlaps (the paper fixes neither the weight's scale nor this).
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, image: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor,
                features: list[torch.Tensor] | None = None) -> torch.Tensor:
        """image [B, 3, H, W] (B = 1 is shared by all N flows, or B = N); flow [N, 2, H, W]; metric [B, 1, H, W]
        -> frames [N, 3, H, W] (not clamped). `features` = self.encoder(image), when the caller reuses them."""
        features = self.encoder(image) if features is None else features
        metric = metric * self.log_temperature.exp()
        splats, coverages = [], []
        for level, feat in enumerate(features):
            size = tuple(feat.shape[-2:])
            lv_metric = F.interpolate(metric, size=size, mode="area") if level else metric
            lv_flow = resample_flow(flow, size)
            # Scale 0 carries the picture and its metric too: the colour base and the depth for hole filling.
            values = torch.cat([image, metric, feat], dim=1) if level == 0 else feat
            splatted, coverage = softmax_splat(values, lv_flow, lv_metric)
            if level == 0:
                colour, depth, splatted = splatted[:, :3], splatted[:, 3:4], splatted[:, 4:]
            splats.append(splatted)
            coverages.append(coverage)
        # One frame at a time: the fill's pyramid depth depends on the holes of everything filled together, and a
        # frame's render must not depend on which frames share its batch (or its process, in training).
        base = torch.cat([fill_holes(colour[i:i + 1], coverages[0][i:i + 1], depth[i:i + 1])
                          for i in range(colour.shape[0])])
        return base + self.decoder(splats, coverages, torch.cat([colour, base], dim=1))
