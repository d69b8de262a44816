"""The motion model's phases (paper section 3): their data, what each trains, and their losses.

Every random draw of a loss (VAE slice choice and posterior noise; diffusion timesteps, noise, condition
dropout) comes from its sample's own generator (distributed.sample_generator), so a batch split over
processes or micro-steps computes the same samples as one big batch.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from .dataset import PairDataset
from .distributed import sample_generator
from ..sources.ldm.diffusion import add_noise
from ..sources.ldm.model import GIDMotionModel, MotionLDMConfig
from ..sources.ldm.vae import GRADIENT_WEIGHT, KL_WEIGHT, L1_WEIGHT, gradient_consistency, kl_divergence
from ..spectral.normalization import FrequencyNormalization
from ..spectral.volume import SpectralVolume


class NormalizedPairs(torch.utils.data.Dataset):
    """Dataset items at the model grid: (picture [3, H, W] in 0..1, normalized channels [4K, H, W])."""

    def __init__(self, pairs: PairDataset, config: MotionLDMConfig, normalization: FrequencyNormalization | None):
        self.pairs, self.config, self.normalization = pairs, config, normalization

    def __len__(self) -> int:
        return len(self.pairs)

    def volume_and_image(self, index: int) -> tuple[torch.Tensor, SpectralVolume]:
        pair = self.pairs.pair(index)
        size = (self.config.height, self.config.width)
        image = pair.image[None]
        if tuple(image.shape[-2:]) != size:
            image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
        return image[0].clamp(0, 1), pair.volume.resize(*size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, volume = self.volume_and_image(index)
        return image, self.normalization.normalize(volume)[0].float()


def measure_normalization(data: NormalizedPairs, samples: int, seed: int, floor: float = 0.01) -> FrequencyNormalization:
    """95th percentiles per bin at the model grid, each raised to at least `floor` x the largest."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(data), generator=g)[:samples].tolist()
    norm = FrequencyNormalization.from_volumes([data.volume_and_image(i)[1] for i in picks])
    top = max(norm.scales)
    return dataclasses.replace(norm, scales=tuple(max(s, floor * top) for s in norm.scales))


def model_config_for(base: MotionLDMConfig, manifest: dict) -> MotionLDMConfig:
    return dataclasses.replace(base, num_bins=int(manifest["num_bins"]), fps=float(manifest["fps"]),
                               period=int(manifest["period"])).validate()


def stage2_config(config: MotionLDMConfig) -> MotionLDMConfig:
    return dataclasses.replace(config, unet=dataclasses.replace(config.unet, frequency_attention=True))


def trainable(phase: str, model: GIDMotionModel) -> dict[str, torch.nn.Parameter]:
    """The phase's parameters (named as in model.state_dict()); everything else is frozen."""
    model.requires_grad_(False)
    if phase == "stage2":
        chosen = {id(p) for p in model.unet.frequency_attention_parameters()}
        params = {n: p for n, p in model.named_parameters() if id(p) in chosen}
    else:
        prefix = {"vae": "vae.", "stage1": "unet."}[phase]
        params = {n: p for n, p in model.named_parameters() if n.startswith(prefix)}
    for p in params.values():
        p.requires_grad_(True)
    return params


def vae_loss_fn(seed: int, slices_per_sample: int):
    """The slice VAE's loss (gid_engine.sources.ldm.vae weights) on `slices_per_sample` random slices per picture."""

    def loss(model: GIDMotionModel, image: torch.Tensor, channels: torch.Tensor, positions: torch.Tensor):
        b, c, h, w = channels.shape
        vae = model.vae
        f, latent = vae.config.downsample, vae.config.latent_channels
        picked, noise = [], []
        for i, position in enumerate(positions.tolist()):
            g = sample_generator(seed, position)
            keep = torch.randperm(c // 4, generator=g)[:slices_per_sample]
            picked.append(channels[i].reshape(c // 4, 4, h, w)[keep.to(channels.device)])
            noise.append(torch.randn(len(keep), latent, h // f, w // f, generator=g))
        x = torch.cat(picked)
        mean, logvar = vae.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.cat(noise).to(mean.device, mean.dtype)
        recon = vae.decode(z).float()
        l1 = (recon - x).abs().mean()
        grad = gradient_consistency(recon, x)
        kl = kl_divergence(mean.float(), logvar.float(), x.numel())
        total = L1_WEIGHT * l1 + GRADIENT_WEIGHT * grad + KL_WEIGHT * kl
        return total, {"loss": total.item(), "l1": l1.item(), "gradient": grad.item(), "kl": kl.item()}

    return loss


def diffusion_loss_fn(seed: int, phase: str, cond_dropout: float):
    """Stage 1: every slice its own sample (own timestep); stage 2: one sample per picture, all K together."""

    def loss(model: GIDMotionModel, image: torch.Tensor, channels: torch.Tensor, positions: torch.Tensor):
        b = image.shape[0]
        k = model.config.num_bins
        device = image.device
        with torch.no_grad():
            z0 = model.encode(channels).float()
        steps = len(model.alphas_cumprod)
        per = z0.shape[0] // b
        t, conditioned, noise = [], [], []
        for position in positions.tolist():
            g = sample_generator(seed, position)
            t.append(torch.randint(steps, (k,), generator=g) if phase == "stage1"
                     else torch.randint(steps, (1,), generator=g).repeat(k))
            conditioned.append((torch.rand(1, generator=g) >= cond_dropout).float().repeat(k))
            noise.append(torch.randn((per, *z0.shape[1:]), generator=g))
        t, conditioned, noise = (torch.cat(v).to(device) for v in (t, conditioned, noise))
        zt = add_noise(z0, noise, t, model.alphas_cumprod)
        picture = model.condition(image).repeat_interleave(k, dim=0)
        freq = torch.arange(b * k, device=device) % k
        out = model.unet(zt.to(model.dtype), t, freq, picture.to(model.dtype), conditioned, k).float()
        total = F.mse_loss(out, model.training_target(z0, noise, t))
        return total, {"loss": total.item()}

    return loss


def slices_per_sample(vae_slices: int, batch: int, num_bins: int) -> int:
    """Slices per picture so a global batch uses about `vae_slices` of them."""
    return max(1, min(num_bins, math.ceil(vae_slices / batch)))
