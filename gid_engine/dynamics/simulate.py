"""Modal coordinates under the user's actions, and the motion texture they drive.

Every mode is a decoupled unit-mass damped spring, x'' + 2 zeta w x' + w^2 x = 0 between actions. The paper
integrates this with explicit Euler; we evaluate the exact solution instead (a damped cosine/sine, or two
decaying exponentials when overdamped) at each frame's time. Explicit Euler gains energy whenever
w h > 2 zeta (h = 1/fps): a 3 Hz mode at stiffness 4 and 5 fps has w h = 7.5 and blows up, and even at
30 fps every undamped mode grows. The exact solution costs the same per frame, needs no step size, never
gains energy (dE/dt = -2 zeta w x'^2 <= 0 for unit mass) and gives the same motion at any frame rate.

Damping (the `damping_model` control):
- "rayleigh" (default): proportional damping C = alpha M + beta K, i.e. zeta(w) = (alpha / w + beta w) / 2,
  with alpha, beta chosen so that zeta equals `damping` at the volume's lowest and highest mode frequency
  (the textbook two-frequency fit). Decay rate zeta w = (alpha + beta w^2) / 2: higher modes die out faster,
  like the flutter of leaves settling before the sway of the branch.
- "per_mode": the same damping ratio for every mode (each mode loses the same share per cycle).
Stiffness multiplies every spring constant, so frequencies scale by sqrt(stiffness); the damping fit uses
the scaled frequencies, so `damping` means the same at any stiffness.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from .. import checks
from ..spectral.motion import FPS, FRAMES, MotionTexture
from ..spectral.volume import SpectralVolume
from .actions import DRAG_SECONDS, Action
from .modal import ModalBasis, object_window, window_at

DAMPING_MODELS = ("rayleigh", "per_mode")
# zeta this close to 1 is treated as critical damping (the two-root formula loses precision there).
CRITICAL_BAND = 1e-6
# Samples of a flicked point's swing over the slowest mode's period (to keep it within its reach).
SWING_SAMPLES = 256
# A point that follows less than this share of an action gets a note ("this point can move about N px").
FOLLOWS = 0.9


@dataclasses.dataclass(frozen=True)
class Controls:
    frames: int = 120
    fps: float = 30.0
    damping: float = 0.2  # damping ratio (0 = rings forever, 1 = critical)
    damping_model: str = "rayleigh"
    stiffness: float = 1.0
    strength: float = 1.0

    def checked(self) -> "Controls":
        FRAMES.check("frames", self.frames)
        FPS.check("fps", self.fps)
        checks.number("damping", self.damping, minimum=0.0, maximum=100.0)
        checks.choice("damping_model", self.damping_model, DAMPING_MODELS)
        checks.number("stiffness", self.stiffness, above=0.0, maximum=1000.0)
        checks.number("strength", self.strength)
        return self


def mode_frequencies(basis: ModalBasis, controls: Controls) -> tuple[torch.Tensor, torch.Tensor]:
    """(omega [M] rad/s after stiffness, damping ratio zeta [M]), float64."""
    omegas = basis.omegas * math.sqrt(controls.stiffness)
    return omegas, damping_ratios(omegas, controls.damping, controls.damping_model)


def damping_ratios(omegas: torch.Tensor, damping: float, model: str) -> torch.Tensor:
    if model == "per_mode" or omegas.numel() == 0:
        return torch.full_like(omegas, damping)
    lo, hi = float(omegas.min()), float(omegas.max())
    alpha = 2 * damping * lo * hi / (lo + hi)
    beta = 2 * damping / (lo + hi)
    return 0.5 * (alpha / omegas + beta * omegas)


def free_response(omega: torch.Tensor, zeta: torch.Tensor, t: torch.Tensor, x0: torch.Tensor, v0: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact (position, velocity) of x'' + 2 zeta w x' + w^2 x = 0 at times t >= 0 (all broadcast)."""
    omega, zeta, t, x0, v0 = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=torch.float64) for v in
                                                       (omega, zeta, t, x0, v0)))
    sigma = zeta * omega
    decay = torch.exp(-sigma * t)
    under = zeta < 1 - CRITICAL_BAND
    over = zeta > 1 + CRITICAL_BAND
    # Underdamped: damped cosine and sine.
    wd = omega * torch.sqrt(torch.clamp(1 - zeta * zeta, min=0))
    wd_safe = torch.where(under, wd, torch.ones_like(wd))
    c, s = torch.cos(wd_safe * t), torch.sin(wd_safe * t)
    b = (v0 + sigma * x0) / wd_safe
    x_under = decay * (x0 * c + b * s)
    v_under = decay * (-sigma * (x0 * c + b * s) + wd_safe * (-x0 * s + b * c))
    # Critically damped: (x0 + (v0 + sigma x0) t) e^(-sigma t).
    lin = v0 + sigma * x0
    x_crit = decay * (x0 + lin * t)
    v_crit = decay * (lin - sigma * (x0 + lin * t))
    # Overdamped: two decaying exponentials (both roots negative, nothing overflows).
    root = omega * torch.sqrt(torch.clamp(zeta * zeta - 1, min=0))
    root_safe = torch.where(over, root, sigma)  # elsewhere r1 = 0: unused, but never overflows
    r1, r2 = -sigma + root_safe, -sigma - root_safe
    a = (v0 - r2 * x0) / (r1 - r2)
    e1, e2 = torch.exp(r1 * t), torch.exp(r2 * t)
    x_over = a * e1 + (x0 - a) * e2
    v_over = a * r1 * e1 + (x0 - a) * r2 * e2
    x = torch.where(under, x_under, torch.where(over, x_over, x_crit))
    v = torch.where(under, v_under, torch.where(over, v_over, v_crit))
    return x, v


def _smoothstep(u: torch.Tensor) -> torch.Tensor:
    u = u.clamp(0, 1)
    return u * u * (3 - 2 * u)


@dataclasses.dataclass(frozen=True)
class Amount:
    """What one action does to its object's modes: coordinates (a pull) or velocities (a flick) [B, M]; the point's
    reach [B]; how far the action moves (pull) or swings (flick) the point [B], and how far the user asked [B]."""

    modal: torch.Tensor
    reach: torch.Tensor
    moved: torch.Tensor
    asked: torch.Tensor

    @property
    def short(self) -> torch.Tensor:
        """[B] whether the point follows clearly less than asked (what the user should be told)."""
        return self.moved < FOLLOWS * self.asked


def point_swing(phi: torch.Tensor, omega: torch.Tensor, zeta: torch.Tensor, velocities: torch.Tensor) -> torch.Tensor:
    """Largest displacement [B] of a point with mode shapes phi [B, 2, M] after a flick with modal velocities [B, M]
    (sampled over the slowest mode's period, which holds the first and largest swing)."""
    times = torch.linspace(0, 2 * math.pi / float(omega.min()), SWING_SAMPLES, dtype=torch.float64,
                           device=phi.device)[:, None, None]
    x, _ = free_response(omega, zeta, times, torch.zeros_like(velocities), velocities[None])  # [T, B, M]
    return torch.einsum("bcm,tbm->tbc", phi, x).norm(dim=-1).amax(dim=0)


def action_amount(action: Action, basis: ModalBasis, controls: Controls) -> Amount:
    """The action's modal coordinates (pull) or velocities (flick), limited so that the point moves at most its
    reach: a longer pull is shortened, a harder flick slowed (both along their own direction)."""
    target = tuple(controls.strength * v for v in action.vector)
    modal = basis.solve(action.at, target)
    phi = basis.at(action.at)
    if action.kind == "pull":
        unlimited = (phi @ modal.unsqueeze(-1)).squeeze(-1).norm(dim=-1)
        asked = torch.full_like(unlimited, math.hypot(*target))
    else:
        omega, zeta = mode_frequencies(basis, controls)
        unlimited = point_swing(phi, omega.to(phi.device), zeta.to(phi.device), modal)
        # A flick on a point that cannot move is asked to move it at all.
        asked = torch.where(unlimited > 0, unlimited, torch.full_like(unlimited, math.hypot(*target) > 0))
    reach = basis.reach(action.at).to(unlimited.device)
    limit = torch.where(unlimited > reach, reach / unlimited.clamp(min=1e-300), torch.ones_like(unlimited))
    return Amount(modal * limit[:, None], reach, torch.minimum(unlimited, reach), asked)


def reach_notes(actions: list[Action], amounts: list[Amount]) -> tuple[str, ...]:
    """What the user should know about actions their point could not follow (one line each)."""
    notes = []
    for index, (action, amount) in enumerate(zip(actions, amounts)):
        for b in torch.nonzero(amount.short).flatten().tolist():
            where = f"actions[{index}]" + (f" on picture {b}" if amount.reach.numel() > 1 else "")
            can = f"{where}: this point can move about {float(amount.moved[b]):.1f} px"
            if action.kind == "pull":
                notes.append(f"{can}; it was pulled {float(amount.asked[b]):.1f} px")
            else:
                length = math.hypot(*action.vector)
                notes.append(f"{can}; the flick of {length:.0f} px/s would swing it {float(amount.asked[b]):.1f} px, "
                             f"so it was slowed to {length * float(amount.moved[b] / amount.asked[b]):.0f} px/s")
    return tuple(notes)


def action_response(action: Action, amount: Amount, basis: ModalBasis, controls: Controls, times: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(coordinates, velocities) [N, B, M] of the action's object modes at `times` [N] seconds."""
    omega, zeta = mode_frequencies(basis, controls)
    device = basis.volume.device
    omega, zeta, t = omega.to(device), zeta.to(device), times.to(device, torch.float64)[:, None, None]
    modal = amount.modal[None]  # [1, B, M]
    since = t - action.time_s
    after = since >= 0
    elapsed = since.clamp(min=0)
    if action.kind == "pull":
        x, v = free_response(omega, zeta, elapsed, modal, torch.zeros_like(modal))
        # Before the release the point is dragged there slowly (eased in): the user holds it.
        ramp = min(DRAG_SECONDS, action.time_s)
        held = modal * (_smoothstep((t - (action.time_s - ramp)) / ramp) if ramp > 0 else 1.0)
        held_v = torch.zeros_like(held)
        return torch.where(after, x, held), torch.where(after, v, held_v)
    x, v = free_response(omega, zeta, elapsed, torch.zeros_like(modal), modal)
    return torch.where(after, x, torch.zeros_like(x)), torch.where(after, v, torch.zeros_like(v))


def modal_state(volume: SpectralVolume, actions: list[Action], controls: Controls, times: torch.Tensor
                ) -> tuple[ModalBasis, torch.Tensor, torch.Tensor, list[Amount]]:
    """(basis, coordinates [N, B, A, M], velocities [N, B, A, M] of each action's object modes at `times`,
    each action's Amount)."""
    basis = ModalBasis.of_objects(volume)
    shape = (times.numel(), volume.batch, len(actions), basis.count)
    x = torch.zeros(shape, dtype=torch.float64, device=volume.device)
    v = torch.zeros_like(x)
    amounts = [action_amount(action, basis, controls) for action in actions]
    for a, (action, amount) in enumerate(zip(actions, amounts)):
        x[:, :, a], v[:, :, a] = action_response(action, amount, basis, controls, times)
    return basis, x, v, amounts


def modal_energy(basis: ModalBasis, controls: Controls, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Total energy of unit-mass modes, 1/2 sum (v^2 + w^2 x^2) over every action's object modes, per frame and
    picture [N, B]."""
    omega, _ = mode_frequencies(basis, controls)
    return 0.5 * (v * v + (omega.to(x.device) ** 2) * x * x).sum(dim=(-2, -1))


@dataclasses.dataclass(frozen=True)
class DynamicsMotion(MotionTexture):
    """A motion texture driven by modal coordinates: frame n is sum_a g_a Re(sum_k S_k q_(a,k)(n)) (Eq. 6 with the
    modes of each action's object, modal.py).

    `weights` [N, B, A, K] complex128 are the q_k of each action's object per frame (0 for DC), `objects` the
    actions' points (fractions; the windows g_a are rebuilt at the volume's size, or, where `sampled_at` holds
    (x [P], y [P], height, width), at those P positions of a height x width picture for a volume whose grid is
    1 x P samples there, as point tracks need), `notes` what the user should
    know (actions limited to their point's reach). It is a MotionTexture, so every renderer draws it unchanged;
    resizing or moving `volume` (as Softmax Splat Render does) keeps the motion. `volume` holds the objects' modes
    (modal.coherent of the simulated volume): the weights belong to them, so putting the input volume back in
    would draw another motion.
    """

    weights: torch.Tensor = dataclasses.field(default=None, kw_only=True)
    objects: tuple[tuple[float, float], ...] = dataclasses.field(default=(), kw_only=True)
    notes: tuple[str, ...] = dataclasses.field(default=(), kw_only=True)
    sampled_at: tuple | None = dataclasses.field(default=None, kw_only=True)

    def fields(self, start: int, stop: int) -> torch.Tensor:
        coeffs = self.volume.coeffs
        real_dtype = torch.float64 if coeffs.dtype == torch.complex128 else torch.float32
        weights = self.weights[start:stop].to(coeffs.device)
        b, k, _, h, w = coeffs.shape
        out = torch.zeros(weights.shape[0], b, 2, h, w, dtype=real_dtype, device=coeffs.device)
        for a, point in enumerate(self.objects):
            window = self.window(point, h, w, real_dtype)
            for i in range(b):
                flat = coeffs[i].reshape(k, -1)
                field = (weights[:, i, a].real.to(real_dtype) @ flat.real.to(real_dtype)
                         - weights[:, i, a].imag.to(real_dtype) @ flat.imag.to(real_dtype))
                out[:, i] += field.reshape(-1, 2, h, w) * window
        return out

    def window(self, point: tuple[float, float], h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        device = self.volume.coeffs.device
        if self.sampled_at is None:
            return object_window(h, w, point, device, dtype)
        x, y, height, width = self.sampled_at
        return window_at(x.to(device, dtype), y.to(device, dtype), height, width, point).view(h, w)

    def fields_at_zero(self) -> torch.Tensor:
        return self.fields(0, 1)

    def mean_magnitude(self, max_samples: int = 64) -> torch.Tensor:
        count = min(self.frame_count, max_samples)
        frames = torch.linspace(0, self.frame_count - 1, count).round().long().tolist()
        total = sum(self.fields(n, n + 1)[0].pow(2).sum(dim=1).sqrt() for n in frames)
        return (total / count).unsqueeze(1).float()


def simulate(volume: SpectralVolume, actions: list[Action], controls: Controls | None = None) -> DynamicsMotion:
    """The response of `volume`'s modes to `actions`, as a motion texture of controls.frames frames."""
    controls = (controls or Controls()).checked()
    checks.finite_tensor("spectral_volume", volume.coeffs)
    times = torch.arange(controls.frames, dtype=torch.float64) / controls.fps
    basis, x, _, amounts = modal_state(volume, actions, controls, times)
    volume = basis.volume  # the objects' modes drive the motion
    # Real coordinates -> Eq. 6's complex q_k = (2/period) (x_re - i x_im); DC gets no weight.
    scale = 2.0 / volume.period
    pairs = x.reshape(*x.shape[:3], volume.num_bins - 1, 2) * scale
    weights = torch.zeros(*x.shape[:3], volume.num_bins, dtype=torch.complex128, device=x.device)
    weights[..., 1:] = torch.complex(pairs[..., 0], -pairs[..., 1])
    zeros = torch.zeros(volume.num_bins, dtype=torch.float64)
    return DynamicsMotion(volume, controls.frames, float(controls.fps), zeros, zeros.clone(), False,
                          weights=weights.cpu(), objects=tuple(a.at for a in actions),
                          notes=reach_notes(actions, amounts))
