"""Interactive dynamics: the acceptance figures of the modal simulation, against baselines run alongside.

    python benchmarks/dynamics.py [--points 40] [--size 256x144] [--json]

- pull accuracy at release on real pictures (samples/, built-in prior): share of pulls whose displacement at the
  pulled point is within 20 % in length and 15 degrees in direction, ours (regularised least squares) vs the
  plain projection x ~ Phi(p)^T d scaled so the point moves |d| along d (the "maximise displacement along d" rule);
- linearity (doubling a pull) and superposition (two actions), relative error;
- decay: fitted envelope decay rate of single-mode volumes vs the chosen damping, worst relative error;
- energy over fps 5..120 and stiffness 0.25..4: worst growth between frames, ours (exact per-mode solution) vs the
  paper's explicit Euler at the same frame rate;
- still regions: displaced pixels where the volume has no motion;
- time to simulate and evaluate 120 frames, vs evaluating Motion Texture's 120 frames of the same volume.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gid_engine.dynamics import Action, Controls, ModalBasis, simulate  # noqa: E402
from gid_engine.dynamics.simulate import mode_frequencies, modal_energy, modal_state  # noqa: E402
from gid_engine.loops.media import read_image  # noqa: E402
from gid_engine.sources.prior import ProceduralPrior  # noqa: E402
from gid_engine.spectral.motion import MotionTexture  # noqa: E402
from gid_engine.spectral.volume import SpectralVolume  # noqa: E402

PULLS = ((10.0, 0.0), (0.0, -10.0), (7.0, 7.0))


def within(field: torch.Tensor, pull) -> tuple[bool, float, float]:
    length = float(field.norm()) / math.hypot(*pull)
    angle = abs((math.degrees(math.atan2(field[1], field[0]) - math.atan2(pull[1], pull[0])) + 180) % 360 - 180)
    return abs(length - 1) < 0.2 and angle < 15, abs(length - 1), angle


def pull_accuracy(pictures, size, points: int) -> dict:
    ours, projection, length_err, angle_err, reach = [], [], [], [], []
    for path in pictures:
        picture = F.interpolate(read_image(path).permute(0, 3, 1, 2), size=(size[1], size[0]), mode="area")
        volume = ProceduralPrior().predict(picture, seed=0)
        basis = ModalBasis.from_volume(volume)
        amplitude = basis.amplitude()[0]
        moving = torch.nonzero(amplitude > 0.2 * torch.quantile(amplitude.flatten(), 0.95))
        picks = moving[torch.randint(len(moving), (points,), generator=torch.Generator().manual_seed(0))]
        h, w = amplitude.shape
        for y, x in picks.tolist():
            at = ((x + 0.5) / w, (y + 0.5) / h)
            phi = basis.at(at)[0]
            for pull in PULLS:
                whole = simulate(volume, [Action("pull", at, pull)], Controls(frames=1)).fields(0, 1)[0, 0]
                field = whole[:, y, x]
                ok, le, ae = within(field.double(), pull)
                # How far the farthest-moving pixel goes, in pulls: pixels that sway more than p follow further.
                reach.append(float(whole.norm(dim=0).max()) / math.hypot(*pull))
                ours.append(ok)
                length_err.append(le)
                angle_err.append(ae)
                d = torch.tensor(pull, dtype=torch.float64)
                coords = phi.T @ d
                moved = phi @ coords
                along = float(moved @ d) / float(d @ d)
                projection.append(within(moved / along if along > 0 else moved * 0, pull)[0])
    return {"pulls": len(ours), "ours_within_share": float(np.mean(ours)),
            "projection_within_share": float(np.mean(projection)),
            "ours_median_length_error": float(np.median(length_err)),
            "ours_median_angle_error_deg": float(np.median(angle_err)),
            "peak_displacement_over_pull_median": float(np.median(reach)),
            "peak_displacement_over_pull_p95": float(np.percentile(reach, 95))}


def random_volume(h=24, w=32, seed=0) -> SpectralVolume:
    g = torch.Generator().manual_seed(seed)
    coeffs = torch.randn(1, 16, 2, h, w, generator=g, dtype=torch.complex128) * 150
    return SpectralVolume(coeffs)


def linearity() -> dict:
    volume = random_volume()
    a = Action("pull", (0.4, 0.6), (4.0, 2.0), 0.3)
    b = Action("impulse", (0.7, 0.2), (-30.0, 10.0), 0.5)
    c = Controls(frames=60, fps=30)
    one = simulate(volume, [a], c).fields(0, 60)
    double = simulate(volume, [Action("pull", a.at, (8.0, 4.0), 0.3)], c).fields(0, 60)
    both = simulate(volume, [a, b], c).fields(0, 60)
    other = simulate(volume, [b], c).fields(0, 60)
    return {"doubling_relative_error": float((double - 2 * one).abs().max() / (2 * one).abs().max()),
            "superposition_relative_error": float((both - one - other).abs().max() / both.abs().max())}


def decay() -> dict:
    worst = 0.0
    for model in ("per_mode", "rayleigh"):
        for bin_index in (2, 5, 10, 15):
            for damping in (0.03, 0.1, 0.3):
                coeffs = torch.zeros(1, 16, 2, 4, 4, dtype=torch.complex128)
                coeffs[:, bin_index, 0] = 225.0
                volume = SpectralVolume(coeffs)
                controls = Controls(frames=600, fps=120, damping=damping, damping_model=model)
                basis = ModalBasis.from_volume(volume)
                omega, zeta = mode_frequencies(basis, controls)
                mode = 2 * (bin_index - 1)
                expected = float(zeta[mode] * omega[mode])
                signal = simulate(volume, [Action("pull", (0.5, 0.5), (2.0, 0.0))], controls).fields(0, 600)
                signal = signal[:, 0, 0, 2, 2].abs().numpy()
                peaks = [i for i in range(1, len(signal) - 1)
                         if signal[i] >= signal[i - 1] and signal[i] >= signal[i + 1] and signal[i] > 1e-6 * signal[0]]
                if len(peaks) < 3:
                    continue
                rate = -np.polyfit(np.array(peaks) / 120, np.log(signal[peaks]), 1)[0]
                worst = max(worst, abs(rate / expected - 1))
    return {"decay_rate_worst_relative_error": worst}


def euler_energy_growth(omega: torch.Tensor, zeta: torch.Tensor, x0: torch.Tensor, fps: float, frames: int) -> float:
    """The paper's explicit Euler, one step per frame: worst energy ratio between consecutive frames."""
    h = 1.0 / fps
    x, v = x0.clone(), torch.zeros_like(x0)
    energy = [float((0.5 * (v * v + omega ** 2 * x * x)).sum())]
    for _ in range(frames):
        x, v = x + h * v, v - h * (omega ** 2 * x + 2 * zeta * omega * v)
        energy.append(float((0.5 * (v * v + omega ** 2 * x * x)).sum()))
    e = np.array(energy)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = e[1:] / e[:-1]
    return float(np.nanmax(np.where(np.isfinite(ratio), ratio, np.inf)))


def energy() -> dict:
    volume = random_volume(12, 16)
    worst_ours, worst_euler = 0.0, 0.0
    for fps in (5, 12, 30, 60, 120):
        for stiffness in (0.25, 1.0, 4.0):
            controls = Controls(frames=fps * 4, fps=fps, damping=0.05, stiffness=stiffness)
            times = torch.arange(controls.frames, dtype=torch.float64) / fps
            basis, x, v = modal_state(volume, [Action("pull", (0.5, 0.5), (4.0, 1.0))], controls, times)
            e = modal_energy(basis, controls, x, v)[:, 0]
            worst_ours = max(worst_ours, float((e[1:] / e[:-1]).max()))
            omega, zeta = mode_frequencies(basis, controls)
            worst_euler = max(worst_euler, euler_energy_growth(omega, zeta, x[0, 0], fps, controls.frames))
    return {"energy_worst_step_ratio_ours": worst_ours, "energy_worst_step_ratio_explicit_euler": worst_euler}


def still_regions(size) -> dict:
    picture = F.interpolate(read_image(ROOT / "samples" / "dandelion.jpg").permute(0, 3, 1, 2),
                            size=(size[1], size[0]), mode="area")
    mask = torch.ones(1, 1, size[1], size[0])
    mask[..., : size[0] // 2] = 0
    volume = ProceduralPrior().predict(picture, seed=0, mask=mask)
    motion = simulate(volume, [Action("pull", (0.75, 0.4), (10.0, 0.0)), Action("pull", (0.25, 0.4), (10.0, 0.0))],
                      Controls(frames=30))
    fields = motion.fields(0, 30)
    return {"still_pixels_moved": int(torch.count_nonzero(fields[..., : size[0] // 2].abs().sum(dim=2))),
            "moving_part_peak_px": float(fields[..., size[0] // 2:].abs().max())}


def speed(size) -> dict:
    picture = F.interpolate(read_image(ROOT / "samples" / "dandelion.jpg").permute(0, 3, 1, 2),
                            size=(size[1], size[0]), mode="area")
    volume = ProceduralPrior().predict(picture, seed=0)
    started = time.perf_counter()
    motion = simulate(volume, [Action("pull", (0.4, 0.3), (10.0, 0.0))], Controls(frames=120))
    for _, _fields in motion.chunks(16):
        pass
    ours = time.perf_counter() - started
    started = time.perf_counter()
    texture = MotionTexture.from_volume(volume, 120, 30.0)
    for _, _fields in texture.chunks(16):
        pass
    baseline = time.perf_counter() - started
    return {"dynamics_120_frames_s": ours, "motion_texture_120_frames_s": baseline, "time_ratio": ours / baseline}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=40, help="random moving points per picture")
    parser.add_argument("--size", default="256x144")
    parser.add_argument("--json", action="store_true", help="print all figures as one JSON object on the last line")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    pictures = [ROOT / "samples" / "dandelion.jpg", *sorted((ROOT / "samples" / "gallery").glob("*.jpg"))]
    result = {"threads": torch.get_num_threads(), "size": list(size), "pictures": [p.name for p in pictures]}
    for name, run in (("pull", lambda: pull_accuracy(pictures, size, args.points)), ("linearity", linearity),
                      ("decay", decay), ("energy", energy), ("still", lambda: still_regions(size)),
                      ("speed", lambda: speed(size))):
        figures = run()
        result[name] = figures
        print(f"{name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
