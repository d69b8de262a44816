"""GIDMotionModel: picture -> spectral volume with the latent diffusion model; its config and checkpoint file."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ... import checks, formats
from ...spectral.motion import synthesis_basis
from ...spectral.normalization import FrequencyNormalization
from ...spectral.volume import DEFAULT_BINS, DEFAULT_FPS, DEFAULT_PERIOD, SpectralVolume
from ..base import split_options, volume_bytes
from .diffusion import (NoiseSchedule, classifier_free_guidance, noise_from_v, sample_ddim, universal_guidance,
                        v_target)
from .unet import MotionUNet, UNetConfig
from .vae import SliceVAE, VAEConfig

WEIGHT_DTYPES = ("F32", "F16", "BF16")

# Sane limits of a checkpoint's config, checked before anything is built (the paper config: 160x256, U-Net 224
# channels x (1, 2, 3, 4), VAE 128 x (1, 2, 4)); a file declaring more is refused, whatever its weights.
CONFIG_LIMITS = {"size": checks.Range(1, 1024, whole=True), "num_bins": checks.Range(1, 64, whole=True),
                 "period": checks.Range(1, 10000, whole=True), "channels": checks.Range(1, 512, whole=True),
                 "channel_mult": checks.Range(1, 8, whole=True), "levels": checks.Range(1, 6, whole=True),
                 "num_res_blocks": checks.Range(1, 8, whole=True), "heads": checks.Range(1, 64, whole=True),
                 "latent_channels": checks.Range(1, 64, whole=True), "timesteps": checks.Range(1, 10000, whole=True)}
# The sampling options a host may set per prediction (steps 0 = the checkpoint's default).
SAMPLING_INPUTS = {"steps": checks.Range(0, 1000, whole=True), "cfg": checks.Range(0.0, 20.0),
                   "loop_guidance": checks.Range(0.0, 100000.0)}


@dataclasses.dataclass(frozen=True)
class MotionLDMConfig:
    height: int = 160
    width: int = 256
    num_bins: int = DEFAULT_BINS
    fps: float = DEFAULT_FPS
    period: int = DEFAULT_PERIOD
    vae: VAEConfig = VAEConfig()
    unet: UNetConfig = UNetConfig()
    schedule: NoiseSchedule = NoiseSchedule()
    latent_scale: float = 1.0  # 1 / std of the VAE latents over training data (set after the VAE is trained)
    # What the U-Net outputs: the noise (the paper's LDM, eps) or v = sqrt(a) eps - sqrt(1 - a) z0 (Salimans & Ho
    # 2022). Sampling converts v to eps, so CFG and loop guidance keep the paper's eps formulas either way.
    v_prediction: bool = False

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.height // self.vae.downsample, self.width // self.vae.downsample

    def validate(self) -> "MotionLDMConfig":
        f = self.vae.downsample * 2 ** (len(self.unet.channel_mult) - 1)
        if self.height % f or self.width % f or self.height < f or self.width < f:
            raise ValueError(f"model size {self.width}x{self.height} must be a positive multiple of {f} "
                             "(VAE downsampling x U-Net downsampling)")
        if self.vae.latent_channels != self.unet.latent_channels:
            raise ValueError("vae.latent_channels and unet.latent_channels differ")
        if self.period <= 2 * (self.num_bins - 1) or self.num_bins < 1:
            raise ValueError(f"period {self.period} is too short for {self.num_bins} bins")
        if not (self.latent_scale > 0 and math.isfinite(self.latent_scale)):
            raise ValueError(f"latent_scale must be a positive number, got {self.latent_scale}")
        self.check_limits()
        return self

    def check_limits(self) -> None:
        limit = CONFIG_LIMITS
        for name, value in (("height", self.height), ("width", self.width)):
            limit["size"].check(f"config.{name}", value)
        limit["num_bins"].check("config.num_bins", self.num_bins)
        limit["period"].check("config.period", self.period)
        limit["timesteps"].check("config.schedule.timesteps", self.schedule.timesteps)
        for part, cfg in (("vae", self.vae), ("unet", self.unet)):
            limit["channels"].check(f"config.{part}.channels", cfg.channels)
            limit["levels"].check(f"config.{part}.channel_mult (levels)", len(cfg.channel_mult))
            for m in cfg.channel_mult:
                limit["channel_mult"].check(f"config.{part}.channel_mult", m)
            limit["num_res_blocks"].check(f"config.{part}.num_res_blocks", cfg.num_res_blocks)
            limit["latent_channels"].check(f"config.{part}.latent_channels", cfg.latent_channels)
        limit["heads"].check("config.unet.frequency_heads", self.unet.frequency_heads)
        checks.integer("config.unet.head_channels", self.unet.head_channels, minimum=1, maximum=self.unet.channels)
        if any(level >= len(self.unet.channel_mult) for level in self.unet.attention_levels):
            raise ValueError(f"config.unet.attention_levels: {list(self.unet.attention_levels)} names a level the "
                             f"U-Net does not have (levels 0..{len(self.unet.channel_mult) - 1})")
        checks.number("config.unet.dropout", self.unet.dropout, minimum=0.0, below=1.0)
        checks.integer("config.vae.in_channels", self.vae.in_channels, minimum=4, maximum=4)
        checks.integer("config.unet.picture_channels", self.unet.picture_channels, minimum=3, maximum=3)
        schedule = self.schedule
        checks.number("config.schedule.beta_start", schedule.beta_start, above=0.0, below=1.0)
        checks.number("config.schedule.beta_end", schedule.beta_end, above=0.0, below=1.0)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


TINY = MotionLDMConfig(
    height=32, width=32,
    vae=VAEConfig(channels=16, channel_mult=(1, 2), num_res_blocks=1),
    unet=UNetConfig(channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), head_channels=16,
                    frequency_heads=2),
    # With eps, the clean estimate at high noise is the prediction error amplified ~14x; a briefly trained small
    # net then commits to a wrong sample in the first steps. v keeps the estimate well posed at every level.
    v_prediction=True,
)
PAPER = MotionLDMConfig()
CONFIGS = {"tiny": TINY, "paper": PAPER}


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    steps: int = 250
    cfg: float = 0.0  # w in (1 + w) eps(c) - w eps(empty)
    eta: float = 0.0
    loop_guidance: float = 0.0  # u; 0 = off. The paper's looping setup: u = 200, w = 1.75, 500 steps
    loop_recurrence: int = 2  # self-recurrence passes per step while loop guidance is on
    loop_frames: int = 0  # T of the loop constraint (F_T vs F_1); 0 = the model's period - 1

    def updated(self, changes: dict | None) -> "SamplingOptions":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes or {}) - known
        if unknown:
            raise ValueError(f"sampling: unknown options {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **(changes or {})).check()

    def check(self) -> "SamplingOptions":
        if self.steps < 1 or self.loop_recurrence < 1 or self.loop_frames in (1, 2) or self.loop_frames < 0:
            raise ValueError(f"sampling: steps and loop_recurrence must be >= 1 and loop_frames 0 or >= 3, got {self}")
        for name in ("cfg", "eta", "loop_guidance"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"sampling: {name} must be a non-negative number, got {value}")
        return self


def displacement_from_channels(channels: torch.Tensor, times: list[float], period: int) -> torch.Tensor:
    """Real, differentiable inverse FFT: [B, 4K, H, W] spectral channels -> [N, B, 2, H, W] pixels at `times`."""
    b, c, h, w = channels.shape
    k = c // 4
    phases = torch.tensor(times, dtype=torch.float64)[:, None] * torch.arange(k, dtype=torch.float64) / period
    basis = synthesis_basis(k, period, phases).to(channels.device)
    parts = channels.reshape(b, k, 2, 2, h, w)  # [B, K, xy, re/im, H, W]
    re = torch.einsum("nk,bkxhw->nbxhw", basis.real.to(channels.dtype), parts[:, :, :, 0])
    im = torch.einsum("nk,bkxhw->nbxhw", basis.imag.to(channels.dtype), parts[:, :, :, 1])
    return re - im


def loop_loss(displacement: torch.Tensor) -> torch.Tensor:
    """Paper §5: ||F_T - F_1||_1 + ||v_T - v_1||_1 for fields [4, B, 2, H, W] at times (1, 2, T - 1, T).

    L1 norms are sums over pixels, axes and pictures, with displacements in units of the grid's width.
    """
    first, second, before_last, last = displacement / displacement.shape[-1]
    return (last - first).abs().sum() + ((last - before_last) - (second - first)).abs().sum()


class GIDMotionModel(nn.Module):
    """The paper's motion LDM as a motion source: predict(image [B, 3, H, W]) -> SpectralVolume on the picture's grid.

    An nn.Module: `.to(device, dtype)` moves it (fp16/bf16 on GPU); host memory managers can wrap it whole.
    Sampling options live in `self.sampling` (a SamplingOptions, saved with the checkpoint as its defaults);
    with_options(steps=, cfg=, loop_guidance=) (the motion-source interface) gives a copy sharing the weights,
    and predict(..., sampling={...}) overrides any SamplingOptions field for one call.
    """

    def __init__(self, config: MotionLDMConfig, normalization: FrequencyNormalization, name: str = "GID motion LDM"):
        super().__init__()
        self.config = config.validate()
        if len(normalization.scales) < config.num_bins:
            raise ValueError(f"normalization has {len(normalization.scales)} bins, the model predicts {config.num_bins}")
        self.normalization = normalization
        self.name = name
        self.vae = SliceVAE(config.vae)
        self.unet = MotionUNet(config.unet, config.num_bins)
        # A plain float64 CPU tensor, not a buffer: Module.to(dtype=float16) must not round the schedule.
        self.alphas_cumprod = config.schedule.alphas_cumprod()
        self.sampling = SamplingOptions()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def with_options(self, **options) -> "GIDMotionModel":
        """The motion-source options of a learned model: DDIM steps (0 = the checkpoint's default), classifier-free
        guidance and loop guidance."""
        own = split_options(self.name, options, SAMPLING_INPUTS)
        changes = {name: SAMPLING_INPUTS[name].check(name, value) for name, value in own.items()}
        if not changes.get("steps", 1):
            del changes["steps"]
        other = copy.copy(self)  # shares the submodules, so the weights
        other.sampling = self.sampling.updated(changes)
        return other

    def estimate_bytes(self, batch: int, height: int, width: int) -> int:
        """Peak memory of predict beyond the weights: the U-Net's activations over the B*K slices at the latent
        grid (a rough bound: a few dozen feature maps of the widest level alive at once), and the volume on the
        picture's grid with the copies that resize, intensity and mask make."""
        lh, lw = self.config.latent_size
        widest = self.config.unet.channels * max(self.config.unet.channel_mult)
        activations = batch * self.config.num_bins * widest * lh * lw * 4 * 8
        return activations + 4 * volume_bytes(batch, self.config.num_bins, height, width)

    # ----- the pieces training and sampling share ----------------------------------------------------------
    def condition(self, image: torch.Tensor) -> torch.Tensor:
        """Pictures [B, 3, H, W] in 0..1 -> [B, 3, h, w] at the latent grid, -1..1."""
        h, w = self.config.latent_size
        return F.interpolate(image.float(), size=(h, w), mode="area") * 2.0 - 1.0

    def to_model_grid(self, image: torch.Tensor) -> torch.Tensor:
        size = (self.config.height, self.config.width)
        return image if tuple(image.shape[-2:]) == size else F.interpolate(image.float(), size=size, mode="area")

    def encode(self, normalized: torch.Tensor) -> torch.Tensor:
        """[B, 4K, H, W] normalized channels -> scaled latents [B*K, 4, h, w] (posterior means)."""
        b, c, h, w = normalized.shape
        mean, _ = self.vae.encode(normalized.reshape(b * (c // 4), 4, h, w).to(self.dtype))
        return mean.float() * self.config.latent_scale

    def decode(self, latents: torch.Tensor, batch: int) -> torch.Tensor:
        """Scaled latents [B*K, 4, h, w] -> normalized channels [B, 4K, H, W]."""
        slices = self.vae.decode((latents / self.config.latent_scale).to(self.dtype)).float()
        n, c, h, w = slices.shape
        return slices.reshape(batch, (n // batch) * c, h, w)

    def denormalize_channels(self, normalized: torch.Tensor) -> torch.Tensor:
        """Differentiable inverse of the frequency-adaptive normalization, [B, 4K, H, W] -> pixel coefficients."""
        return self.normalization.denormalize_channels(normalized, self.config.period, self.config.width)

    def noise_from_output(self, out: torch.Tensor, z: torch.Tensor, t: int) -> torch.Tensor:
        """The U-Net's output at noise level t as predicted noise eps (identity for an eps model)."""
        return noise_from_v(out, z, t, self.alphas_cumprod) if self.config.v_prediction else out

    def training_target(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the U-Net learns to output for z_t = sqrt(a) z0 + sqrt(1 - a) noise."""
        return v_target(z0, noise, t, self.alphas_cumprod) if self.config.v_prediction else noise

    def ensure_differentiable_weights(self) -> None:
        """Weights created under torch.inference_mode (a host loading the model there) cannot take part in a
        backward pass; loop guidance needs one, so swap such weights for ordinary copies (once)."""
        with torch.inference_mode(False):
            for module in self.modules():
                for name, param in list(module._parameters.items()):
                    if param is not None and param.is_inference():
                        module._parameters[name] = nn.Parameter(param.detach().clone(), requires_grad=False)

    # ----- sampling -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_normalized(self, image: torch.Tensor, seed: int = 0, options: SamplingOptions | None = None,
                          callback: Callable[[dict], None] | None = None) -> torch.Tensor:
        """Normalized spectral channels [B, 4K, H, W] at the model grid, one seed per picture (seed + index)."""
        options = (options or self.sampling).check()
        device = self.device
        b = image.shape[0]
        k = self.config.num_bins
        h, w = self.config.latent_size
        noise = torch.cat([torch.randn(k, self.config.vae.latent_channels, h, w,
                                       generator=torch.Generator().manual_seed(int(seed) + i)) for i in range(b)])
        generator = torch.Generator().manual_seed(int(seed) + 0x5EED)
        picture = self.condition(image.to(device)).repeat_interleave(k, dim=0)
        ones = torch.ones(b * k, device=device)
        freq = torch.arange(b * k, device=device) % k

        def eps_with(conditioned: torch.Tensor):
            def fn(z: torch.Tensor, t: int) -> torch.Tensor:
                steps = torch.full((z.shape[0],), t, device=device, dtype=torch.long)
                out = self.unet(z.to(self.dtype), steps, freq, picture.to(self.dtype), conditioned, k).float()
                return self.noise_from_output(out, z, t)
            return fn

        eps_fn = classifier_free_guidance(eps_with(ones), eps_with(torch.zeros_like(ones)), options.cfg)
        recurrence = 1
        if options.loop_guidance > 0:
            self.ensure_differentiable_weights()
            last = options.loop_frames or self.config.period - 1
            times = [1.0, 2.0, float(last - 1), float(last)]

            def guidance_loss(z0: torch.Tensor) -> torch.Tensor:
                coeffs = self.denormalize_channels(self.decode(z0, b))
                return loop_loss(displacement_from_channels(coeffs, times, self.config.period))

            eps_fn = universal_guidance(eps_fn, guidance_loss, options.loop_guidance, self.alphas_cumprod)
            recurrence = options.loop_recurrence
        latents = sample_ddim(eps_fn, noise.to(device), self.alphas_cumprod, options.steps, eta=options.eta,
                              generator=generator, callback=callback, recurrence=recurrence)
        return self.decode(latents, b)

    def predict(self, image: torch.Tensor, *, seed: int = 0, mask: torch.Tensor | None = None, intensity: float = 1.0,
                progress: Callable[[int, int], None] | None = None, sampling: dict | None = None) -> SpectralVolume:
        """image [B, 3, H, W] in 0..1 -> SpectralVolume [B, K, 2, H, W] on the image's grid and device.

        progress(done, total) counts denoising steps and may raise to cancel.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be [B, 3, H, W], got {tuple(image.shape)}")
        options = self.sampling.updated(sampling)
        callback = (lambda info: progress(info["i"] + 1, info["total"])) if progress is not None else None
        normalized = self.sample_normalized(self.to_model_grid(image), seed, options, callback)
        coeffs = self.denormalize_channels(normalized)
        volume = SpectralVolume.from_channels(coeffs, fps=self.config.fps, period=self.config.period)
        volume = volume.resize(image.shape[-2], image.shape[-1]).to(image.device)
        out = volume.coeffs * intensity
        if mask is not None:
            out = out * mask.to(image.device, torch.float32).unsqueeze(1)
        return volume.replace(coeffs=out, metadata={"source": self.name, "seed": seed, "intensity": intensity,
                                                    "sampling": dataclasses.asdict(options)})

    # ----- files ----------------------------------------------------------------------------------------------
    def save(self, path: str | Path, extra_metadata: dict | None = None) -> Path:
        from safetensors.torch import save_file

        tensors = {key: value.detach().to("cpu", torch.float32).contiguous() for key, value in self.state_dict().items()}
        meta = formats.MOTION_MODEL.metadata(config=self.config.to_json(), normalization=self.normalization.to_json(),
                                             name=self.name, sampling=json.dumps(dataclasses.asdict(self.sampling)),
                                             **{k: str(v) for k, v in (extra_metadata or {}).items()})
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)  # never leave a half-written checkpoint under the real name
        return path

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> "GIDMotionModel":
        """Validated load: a clear ValueError for a file that is not a consistent GID motion model. The config is
        checked against sane limits and the model is built on the meta device, so the weights' shapes in the
        header are compared with the shapes the config implies before any memory is allocated."""
        from safetensors import safe_open

        path = Path(path)
        header = formats.MOTION_MODEL.read(path)
        meta = header.metadata
        try:
            config = formats.read_config(MotionLDMConfig, meta.get("config", ""), "config")
            normalization = formats.read_config(FrequencyNormalization, meta.get("normalization", ""), "normalization")
            sampling = formats.read_config(SamplingOptions, meta.get("sampling", "{}"), "sampling", defaults=True)
        except ValueError as err:
            raise ValueError(f"{path.name} has a bad model config: {err}") from None
        with torch.device("meta"):
            model = cls(config, normalization, name=meta.get("name") or path.stem)
        expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        found = {key: entry.shape for key, entry in header.tensors.items()}
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        if missing or unexpected or wrong:
            details = "; ".join(f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                                for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                    ("wrong shape", wrong)) if keys)
            raise ValueError(f"{path.name}: the weights do not match the model config in the file ({details})")
        odd = sorted(k for k, entry in header.tensors.items() if entry.dtype not in WEIGHT_DTYPES)
        if odd:
            raise ValueError(f"{path.name}: weights must be floating point ({', '.join(WEIGHT_DTYPES)}); "
                             f"{odd[0]} is {header.tensors[odd[0]].dtype}")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                tensors = {key: f.get_tensor(key) for key in f.keys()}
        except Exception as err:  # safetensors reports damage with its own error types
            raise ValueError(f"cannot read {path.name}: {err}") from None
        for key, tensor in tensors.items():
            checks.finite_tensor(f"{path.name}: weight {key}", tensor)
        model = model.to_empty(device="cpu")
        model.alphas_cumprod = config.schedule.alphas_cumprod()  # built on meta with the rest
        model.load_state_dict(tensors)
        model.sampling = sampling
        return model.eval().to(device)
