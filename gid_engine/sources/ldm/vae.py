"""KL autoencoder for one 4-channel frequency slice (Re x, Im x, Re y, Im y), 4-channel latent (paper §3).

One VAE is shared by all K slices; its losses are L1 x 1 + multi-scale gradient consistency x 0.2 + KL x 1e-6.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Downsample, ResBlock, SpatialAttention, Upsample, group_norm

L1_WEIGHT = 1.0
GRADIENT_WEIGHT = 0.2
KL_WEIGHT = 1e-6
GRADIENT_SCALES = 4


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    channels: int = 128
    channel_mult: tuple[int, ...] = (1, 2, 4)  # downsampling factor 2 ** (len - 1)
    num_res_blocks: int = 2
    in_channels: int = 4
    latent_channels: int = 4

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        widths = [cfg.channels * m for m in cfg.channel_mult]
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        ch = widths[0]
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(ch, width))
                ch = width
            if level < len(widths) - 1:
                layers.append(Downsample(ch))
        self.down = nn.Sequential(*layers)
        self.mid = nn.Sequential(ResBlock(ch, ch), SpatialAttention(ch, ch), ResBlock(ch, ch))
        self.norm_out = group_norm(ch)
        self.conv_out = nn.Conv2d(ch, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(x)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        widths = [cfg.channels * m for m in cfg.channel_mult]
        ch = widths[-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch, 3, padding=1)
        self.mid = nn.Sequential(ResBlock(ch, ch), SpatialAttention(ch, ch), ResBlock(ch, ch))
        layers: list[nn.Module] = []
        for level in reversed(range(len(widths))):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResBlock(ch, widths[level]))
                ch = widths[level]
            if level > 0:
                layers.append(Upsample(ch))
        self.up = nn.Sequential(*layers)
        self.norm_out = group_norm(ch)
        self.conv_out = nn.Conv2d(ch, cfg.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))


class SliceVAE(nn.Module):
    """[N, 4, H, W] normalized frequency slices <-> [N, 4, H/f, W/f] latents (H, W multiples of f)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def check_size(self, x: torch.Tensor) -> None:
        f = self.config.downsample
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"VAE input must be [N, {self.config.in_channels}, H, W] with H and W multiples of {f}, "
                             f"got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance."""
        self.check_size(x)
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mean, logvar = self.encode(x)
        noise = torch.randn(mean.shape, generator=generator, device=generator.device if generator else None)
        z = mean + (0.5 * logvar).exp() * noise.to(mean.device, mean.dtype)
        return self.decode(z), mean, logvar


def gradient_consistency(pred: torch.Tensor, target: torch.Tensor, scales: int = GRADIENT_SCALES) -> torch.Tensor:
    """Multi-scale gradient matching (MegaDepth style): L1 of the x/y differences of the residual at 1, 1/2, 1/4, ..."""
    residual = pred - target
    total = pred.new_zeros(())
    for s in range(scales):
        r = residual[..., ::2 ** s, ::2 ** s]
        if r.shape[-1] < 2 or r.shape[-2] < 2:
            break
        total = total + (r[..., :, 1:] - r[..., :, :-1]).abs().mean() + (r[..., 1:, :] - r[..., :-1, :]).abs().mean()
    return total / scales


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor, input_elements: int) -> torch.Tensor:
    """KL(q || N(0, 1)) summed over latent elements, divided by the input's element count (as the L1 term is a mean)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum() / input_elements


def vae_loss(vae: SliceVAE, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    recon, mean, logvar = vae(x, generator)
    l1 = (recon - x).abs().mean()
    grad = gradient_consistency(recon, x)
    kl = kl_divergence(mean, logvar, x.numel())
    loss = L1_WEIGHT * l1 + GRADIENT_WEIGHT * grad + KL_WEIGHT * kl
    return loss, {"l1": l1.item(), "gradient": grad.item(), "kl": kl.item()}
