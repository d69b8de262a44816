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

from ...spectral.motion import synthesis_basis
from ...spectral.normalization import FrequencyNormalization
from ...spectral.volume import DEFAULT_BINS, DEFAULT_FPS, DEFAULT_PERIOD, SpectralVolume
from .diffusion import (NoiseSchedule, classifier_free_guidance, noise_from_v, sample_ddim, universal_guidance,
                        v_target)
from .unet import MotionUNet, UNetConfig
from .vae import SliceVAE, VAEConfig

MOTION_MODEL_FORMAT = "gid.motion_ldm"
FORMAT_VERSION = "1"


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
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "MotionLDMConfig":
        """Parse and check a config; unknown or missing keys and wrong types are errors that name the key."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"model config is not JSON: {err}") from None
        return _build(cls, data, "config").validate()


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    values = {}
    for name, field in fields.items():
        if name not in data:
            raise ValueError(f"{where}.{name} is missing")
        default = field.default
        value = data[name]
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{where}.{name} must be true or false, got {value!r}")
            values[name] = value
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, int) and v >= 0 for v in value):
                raise ValueError(f"{where}.{name} must be a list of non-negative integers, got {value!r}")
            values[name] = tuple(value)
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{name} must be a non-negative integer, got {value!r}")
            values[name] = value
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{where}.{name} must be a number, got {value!r}")
            values[name] = float(value)
    return cls(**values)


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
    predict(..., sampling={...}) overrides them for one call, and with_sampling(**changes) gives a copy sharing
    the weights.
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

    def with_sampling(self, **changes) -> "GIDMotionModel":
        other = copy.copy(self)  # shares the submodules, so the weights
        other.sampling = self.sampling.updated(changes)
        return other

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
        probe = SpectralVolume(torch.zeros(1, self.config.num_bins, 2, 1, self.config.width, dtype=torch.complex64),
                               fps=self.config.fps, period=self.config.period)
        s = self.normalization.scales_for(probe).to(normalized.device, normalized.dtype).repeat_interleave(4)
        return torch.sign(normalized) * normalized.pow(2) * s.view(1, -1, 1, 1)

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
        meta = {"format": MOTION_MODEL_FORMAT, "version": FORMAT_VERSION, "config": self.config.to_json(),
                "normalization": self.normalization.to_json(), "name": self.name,
                "sampling": json.dumps(dataclasses.asdict(self.sampling)),
                **{k: str(v) for k, v in (extra_metadata or {}).items()}}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)  # never leave a half-written checkpoint under the real name
        return path

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> "GIDMotionModel":
        """Validated load: a clear ValueError for a file that is not a consistent GID motion model."""
        from safetensors import safe_open

        from ..checkpoints import read_safetensors_metadata

        path = Path(path)
        meta = read_safetensors_metadata(path)
        if meta.get("format") != MOTION_MODEL_FORMAT:
            raise ValueError(f"{path.name} is not a GID motion model (format={meta.get('format')!r})")
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path.name}: motion model format version {meta.get('version')!r} is not supported "
                             f"(this pack reads version {FORMAT_VERSION})")
        try:
            config = MotionLDMConfig.from_json(meta.get("config", ""))
            normalization = FrequencyNormalization.from_json(meta.get("normalization", ""))
            sampling = SamplingOptions(**json.loads(meta.get("sampling", "{}"))).check()
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path.name} has a bad model config: {err}") from None
        model = cls(config, normalization, name=meta.get("name") or path.stem)
        model.sampling = sampling
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                tensors = {key: f.get_tensor(key) for key in f.keys()}
        except Exception as err:  # safetensors reports damage with its own error types
            raise ValueError(f"cannot read {path.name}: {err}") from None
        expected = model.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
        if missing or unexpected or wrong:
            details = "; ".join(f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                                for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                    ("wrong shape", wrong)) if keys)
            raise ValueError(f"{path.name}: the weights do not match the model config in the file ({details})")
        model.load_state_dict(tensors)
        return model.eval().to(device)
