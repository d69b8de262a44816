"""Noise schedule, training loss and DDIM sampling as plain functions (k-diffusion style).

A denoiser is any callable eps_fn(z, t) -> predicted noise, where t is an integer training timestep.
Samplers take it plus the starting noise; `callback(info)` runs after every step with
{"i", "total", "t", "x", "denoised"} and cancels sampling by raising. Randomness during sampling (eta > 0,
self-recurrence) comes only from the given torch.Generator, so a seed fixes the result.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class NoiseSchedule:
    """LDM's 'linear' schedule: betas linear in sqrt space between beta_start and beta_end."""

    timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012

    def alphas_cumprod(self) -> torch.Tensor:
        betas = torch.linspace(self.beta_start ** 0.5, self.beta_end ** 0.5, self.timesteps, dtype=torch.float64) ** 2
        return torch.cumprod(1.0 - betas, dim=0)


def _alpha_rows(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """alpha_bar at per-row timesteps t [N], shaped to broadcast over rows of `like`."""
    return alphas_cumprod.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def add_noise(z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """q(z_t | z_0) for per-row timesteps t [N]."""
    a = _alpha_rows(alphas_cumprod, t, z0)
    return a.sqrt() * z0 + (1.0 - a).sqrt() * noise


def v_target(z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """v = sqrt(a) eps - sqrt(1 - a) z0 (Salimans & Ho 2022) for per-row timesteps t [N]."""
    a = _alpha_rows(alphas_cumprod, t, z0)
    return a.sqrt() * noise - (1.0 - a).sqrt() * z0


def noise_from_v(v: torch.Tensor, z: torch.Tensor, t: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """The noise eps implied by a v prediction at z_t (one timestep for the whole batch, as samplers use)."""
    a = float(alphas_cumprod[t])
    return a ** 0.5 * v + (1.0 - a) ** 0.5 * z


def ddim_timesteps(num_train: int, steps: int) -> list[int]:
    """`steps` evenly spaced training timesteps, highest first."""
    if not 1 <= steps <= num_train:
        raise ValueError(f"steps must be between 1 and {num_train}, got {steps}")
    spaced = torch.linspace(0, num_train - 1, steps, dtype=torch.float64).round().long().unique()
    return spaced.flip(0).tolist()


def classifier_free_guidance(eps_cond: EpsFn, eps_uncond: EpsFn, weight: float) -> EpsFn:
    """The paper's convention (Eq. 5): (1 + w) eps(c) - w eps(empty). w = 0 skips the unconditional pass."""
    if weight == 0:
        return eps_cond

    def guided(z: torch.Tensor, t: int) -> torch.Tensor:
        return (1.0 + weight) * eps_cond(z, t) - weight * eps_uncond(z, t)

    return guided


def universal_guidance(eps_fn: EpsFn, loss_fn: Callable[[torch.Tensor], torch.Tensor], scale: float,
                       alphas_cumprod: torch.Tensor) -> EpsFn:
    """Forward universal guidance (Bansal et al. 2023): eps + scale * sigma_t * grad_z loss(predicted z_0).

    The gradient runs through the denoiser and whatever loss_fn does with the clean estimate (decoder, iFFT).
    Adding it to eps moves the clean estimate z_0 = (z - sigma eps) / alpha against the gradient: loss goes down.
    """

    def guided(z: torch.Tensor, t: int) -> torch.Tensor:
        a = float(alphas_cumprod[t])
        sigma = (1.0 - a) ** 0.5
        # Hosts may sample under torch.inference_mode (ComfyUI does); the gradient needs ordinary tensors.
        with torch.inference_mode(False), torch.enable_grad():
            z_in = z.detach().clone().requires_grad_(True)
            eps = eps_fn(z_in, t)
            z0 = (z_in - sigma * eps) / a ** 0.5
            (grad,) = torch.autograd.grad(loss_fn(z0), z_in)
        return eps.detach() + scale * sigma * grad

    return guided


def sample_ddim(eps_fn: EpsFn, noise: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int, *, eta: float = 0.0,
                generator: torch.Generator | None = None, callback: Callable[[dict], None] | None = None,
                recurrence: int = 1) -> torch.Tensor:
    """DDIM (Song et al. 2021) from pure noise to z_0. eta = 0 is deterministic.

    recurrence > 1 is universal guidance's self-recurrence: after each step, re-noise z_{t-1} back to level t
    with fresh noise and take the step again, `recurrence` passes in all. The last step goes to alpha = 1 (z_0).
    """
    if recurrence < 1:
        raise ValueError(f"recurrence must be at least 1, got {recurrence}")
    acp = alphas_cumprod.double()
    times = ddim_timesteps(len(acp), steps)
    x = noise
    total = len(times)

    def fresh_noise() -> torch.Tensor:
        return torch.randn(x.shape, generator=generator, dtype=torch.float32, device=generator.device if generator else None).to(x)

    for i, t in enumerate(times):
        a = float(acp[t])
        a_prev = float(acp[times[i + 1]]) if i + 1 < total else 1.0
        for r in range(recurrence):
            eps = eps_fn(x, t)
            denoised = (x - (1.0 - a) ** 0.5 * eps) / a ** 0.5
            sigma = eta * ((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev)) ** 0.5
            x_prev = a_prev ** 0.5 * denoised + max(1.0 - a_prev - sigma ** 2, 0.0) ** 0.5 * eps
            if sigma > 0:
                x_prev = x_prev + sigma * fresh_noise()
            if r + 1 < recurrence:  # back to level t: z_t = sqrt(a/a_prev) z_{t-1} + sqrt(1 - a/a_prev) noise
                x = (a / a_prev) ** 0.5 * x_prev + (1.0 - a / a_prev) ** 0.5 * fresh_noise()
        x = x_prev
        if callback is not None:
            callback({"i": i, "total": total, "t": t, "x": x, "denoised": denoised})
    return x
