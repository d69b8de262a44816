"""The denoiser: an LDM-style 2D U-Net with frequency attention (paper §3, frequency-coordinated denoising).

Spatial layers see every frequency slice as its own sample, [B*K, C, h, w] (slice j of picture b at row b*K + j).
Frequency attention layers regroup the rows as [B, K, C, h, w] and attend across the K slices at each (h, w).
Input: noisy latent [B*K, 4, h, w] concatenated with the picture downsampled to h x w (3 channels, -1..1).
Conditioning: sinusoidal timestep embedding -> MLP, plus sinusoidal frequency-index embedding -> MLP, added.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Downsample, ResBlock, SpatialAttention, Upsample, group_norm, sinusoidal_embedding, zero_init


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    channels: int = 224
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (1, 2, 3)  # levels (0 = full latent resolution) with spatial attention
    head_channels: int = 32
    frequency_heads: int = 4
    frequency_attention: bool = False  # False: stage 1 (independent slices); True: stage 2
    dropout: float = 0.0
    latent_channels: int = 4
    picture_channels: int = 3


class FrequencyAttention(nn.Module):
    """Self-attention across the K frequency slices at each spatial location (LVDM-style temporal attention).

    Learned relative-position bias over the frequency offset. Only the output projection is zero-initialised:
    the layer is then exactly the identity, and (unlike zeroing q, k, v and the output together) it still gets
    gradients on the first step.
    """

    def __init__(self, channels: int, heads: int, max_bins: int):
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.max_bins = max_bins
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.relative_bias = nn.Parameter(torch.zeros(self.heads, 2 * max_bins - 1))
        self.out = zero_init(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor, num_bins: int) -> torch.Tensor:
        n, c, h, w = x.shape
        if n % num_bins or num_bins > self.max_bins:
            raise ValueError(f"frequency attention needs rows = batch * K with K <= {self.max_bins}, got {n} rows, K={num_bins}")
        b = n // num_bins
        tokens = x.reshape(b, num_bins, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, num_bins, c)
        q, k, v = self.qkv(self.norm(tokens)).reshape(b * h * w, num_bins, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        idx = torch.arange(num_bins, device=x.device)
        bias = self.relative_bias[:, (idx[None, :] - idx[:, None]) + self.max_bins - 1]  # [heads, K, K]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        update = self.out(attended.transpose(1, 2).reshape(b * h * w, num_bins, c))
        update = update.reshape(b, h * w, num_bins, c).permute(0, 2, 3, 1).reshape(n, c, h, w)
        return x + update


class Stage(nn.Module):
    """A run of spatial layers; in stage 2 a frequency-attention layer follows some of them.

    The frequency layers sit in their own dict (keyed by the index of the layer they follow), so the spatial
    layers keep the same parameter names with and without them and stage-1 weights load into stage 2 as they are.
    """

    def __init__(self, layers: list[nn.Module], frequency: dict[int, FrequencyAttention] | None = None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.frequency = nn.ModuleDict({str(i): m for i, m in (frequency or {}).items()})

    def forward(self, x: torch.Tensor, emb: torch.Tensor, num_bins: int, skip_size=None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, Upsample):
                x = layer(x, skip_size)
            else:
                x = layer(x)
            if str(i) in self.frequency:
                x = self.frequency[str(i)](x, num_bins)
        return x


class MotionUNet(nn.Module):
    def __init__(self, cfg: UNetConfig, num_bins: int):
        super().__init__()
        self.config = cfg
        self.num_bins = num_bins
        ch = cfg.channels
        emb_dim = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.freq_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        # Classifier-free guidance's empty condition: picture zeroed and this learned vector added to the embedding.
        self.null_condition = nn.Parameter(torch.zeros(emb_dim))

        def stage(width: int, level: int, first: nn.Module, upsample: bool = False) -> Stage:
            """first layer, spatial attention where the config asks for it, frequency attention after both in stage 2."""
            layers = [first]
            if level in cfg.attention_levels:
                layers.append(SpatialAttention(width, cfg.head_channels))
            frequency = {len(layers) - 1: FrequencyAttention(width, cfg.frequency_heads, num_bins)} if cfg.frequency_attention else {}
            if upsample:
                layers.append(Upsample(width))
            return Stage(layers, frequency)

        widths = [ch * m for m in cfg.channel_mult]
        self.input_stages = nn.ModuleList([Stage([nn.Conv2d(cfg.latent_channels + cfg.picture_channels, ch, 3, padding=1)])])
        skip_widths = [ch]
        cur = ch
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                self.input_stages.append(stage(width, level, ResBlock(cur, width, emb_dim, cfg.dropout)))
                cur = width
                skip_widths.append(cur)
            if level < len(widths) - 1:
                self.input_stages.append(Stage([Downsample(cur)]))
                skip_widths.append(cur)
        middle_frequency = ({1: FrequencyAttention(cur, cfg.frequency_heads, num_bins),
                             2: FrequencyAttention(cur, cfg.frequency_heads, num_bins)} if cfg.frequency_attention else {})
        self.middle = Stage([ResBlock(cur, cur, emb_dim, cfg.dropout), SpatialAttention(cur, cfg.head_channels),
                             ResBlock(cur, cur, emb_dim, cfg.dropout)], middle_frequency)
        self.output_stages = nn.ModuleList()
        for level in reversed(range(len(widths))):
            for i in range(cfg.num_res_blocks + 1):
                first = ResBlock(cur + skip_widths.pop(), widths[level], emb_dim, cfg.dropout)
                cur = widths[level]
                self.output_stages.append(stage(cur, level, first, upsample=level > 0 and i == cfg.num_res_blocks))
        self.norm_out = group_norm(cur)
        self.conv_out = zero_init(nn.Conv2d(cur, cfg.latent_channels, 3, padding=1))

    def embedding(self, t: torch.Tensor, freq: torch.Tensor, conditioned: torch.Tensor) -> torch.Tensor:
        ch, dtype = self.config.channels, self.null_condition.dtype
        emb = self.time_mlp(sinusoidal_embedding(t, ch).to(dtype)) + self.freq_mlp(sinusoidal_embedding(freq, ch).to(dtype))
        return emb + (1.0 - conditioned.to(emb.dtype))[:, None] * self.null_condition

    def forward(self, z: torch.Tensor, t: torch.Tensor, freq: torch.Tensor, picture: torch.Tensor,
                conditioned: torch.Tensor, num_bins: int = 1) -> torch.Tensor:
        """z [N, 4, h, w], t/freq/conditioned [N], picture [N, 3, h, w] (rows already matched to z) -> eps [N, 4, h, w].

        num_bins = K groups the N = B*K rows for frequency attention (ignored by a stage-1 network).
        """
        picture = picture * conditioned.to(picture.dtype)[:, None, None, None]
        emb = self.embedding(t, freq, conditioned)
        x = torch.cat([z, picture.to(z.dtype)], dim=1)
        skips = []
        for stage in self.input_stages:
            x = stage(x, emb, num_bins)
            skips.append(x)
        x = self.middle(x, emb, num_bins)
        for stage in self.output_stages:
            skip = skips.pop()
            x = stage(torch.cat([x, skip], dim=1), emb, num_bins, skip_size=skips[-1].shape[-2:] if skips else None)
        return self.conv_out(F.silu(self.norm_out(x)))

    def frequency_attention_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules() if isinstance(m, FrequencyAttention) for p in m.parameters()]
