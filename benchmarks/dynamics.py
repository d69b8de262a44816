"""Interactive dynamics: the acceptance figures of the modal simulation, against baselines run alongside.

    python benchmarks/dynamics.py [--points 6] [--size 256] [--json]

- pulls, measured on the rendered frames (what the user gets) with OpenCV DIS optical flow from the picture: on
  the labelled pictures (benchmarks/pictures, points inside their "moves" boxes that the built-in prior moves at
  least half as much as the picture's liveliest parts; samples/ at such points), at least EDGE_SHARE of the width
  inside the frame, a pull of 4 % of the width in a random direction released at frame 0: how far the point moves
  (its flow over the pull's length) and in which direction (cosine), over all pulls and over the measurable ones
  (where optical flow reads an exact backward warp of the same simulated field within 0.6-1.4x and cosine 0.9 of
  the simulated displacement: not on flat grass or dark water), how far the rendered point follows the simulated
  displacement there, the median flow farther than a quarter of the width from the point (over the pull), the
  ring-down (the point's flow along the pull over the frames against the simulated motion there: correlation
  and relative RMS error), and tearing: the mean |Laplacian| of the frame over the moved region (> 1 px) over the
  same of the picture, for the renderer and for it without the stretched-surface redraw (the renderer before it);
- stretch: synthetic smooth flows (a shifted and an expanded bump, 10-30 px) on a real picture: PSNR against the
  truth (the exact inverse warp of the 4x upsampled picture, area-downsampled) over the moved region, of the
  renderer, of it without the stretched-surface redraw, and of cv2.remap through the exact inverse map;
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

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gid_engine.dynamics import Action, Controls, ModalBasis, simulate  # noqa: E402
from gid_engine.dynamics.simulate import mode_frequencies, modal_energy, modal_state  # noqa: E402
from gid_engine.loops.media import read_image  # noqa: E402
from gid_engine.render.renderer import (  # noqa: E402
    DEFAULT_TEMPERATURE, METRIC_REFERENCE_SIZE, SplatRenderer, render_frames)
from gid_engine.sources.prior import ProceduralPrior  # noqa: E402
from gid_engine.spectral.motion import MotionTexture  # noqa: E402
from gid_engine.spectral.volume import SpectralVolume  # noqa: E402

PULL_SHARE = 0.04  # pull length, of the width
FAR_SHARE = 0.25  # "far" from the point: farther than this share of the width
RING_FRAMES = 24
MOVED_PX = 1.0  # the moved region: displacement of at least this many pixels
# Pulled points lie at least this share of the width inside the frame: nearer, the pulled content leaves the frame
# and optical flow's patches cross the border (it read 0.06-1.9x the pull there, in any direction).
EDGE_SHARE = PULL_SHARE + 0.02


def pictures_with_boxes(size: int) -> list[tuple[str, torch.Tensor, list]]:
    """(name, picture [1, 3, H, W] at `size` wide, "moves" boxes as fractions or None) of every benchmark picture."""
    out = []
    labels_path = ROOT / "benchmarks" / "pictures" / "labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.is_file() else []
    paths = [(ROOT / "samples" / "dandelion.jpg", None),
             *((p, None) for p in sorted((ROOT / "samples" / "gallery").glob("*.jpg"))),
             *((ROOT / "benchmarks" / "pictures" / entry["file"], entry["moves"]) for entry in labels)]
    for path, boxes in paths:
        image = read_image(path).permute(0, 3, 1, 2)
        h, w = image.shape[-2:]
        height = max(16, round(size * h / w / 2) * 2)
        picture = F.interpolate(image, size=(height, size), mode="area")
        fractions = None if boxes is None else [(x0 / w, y0 / h, x1 / w, y1 / h) for x0, y0, x1, y1 in boxes]
        out.append((path.name, picture, fractions))
    return out


def flow_between(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    grey = [cv2.cvtColor((np.clip(f, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in (before, after)]
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey[0], grey[1], None)


def flow_at(flow: np.ndarray, x: int, y: int, radius: int = 2) -> np.ndarray:
    patch = flow[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1]
    return np.median(patch.reshape(-1, 2), axis=0)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-9))


def laplacian_ratio(frame: np.ndarray, picture: np.ndarray, moved: np.ndarray) -> float:
    """Mean |Laplacian| of the frame over the moved region / the same of the picture (tearing: dots and streaks)."""
    lap = [np.abs(cv2.Laplacian(cv2.cvtColor(f.astype(np.float32), cv2.COLOR_RGB2GRAY), cv2.CV_32F))
           for f in (frame, picture)]
    return float(lap[0][moved].mean() / max(lap[1][moved].mean(), 1e-9))


def without_surface_redraw():
    """The renderer as it was before the stretched-surface redraw (torch path, the redraw switched off)."""
    import gid_engine.render.renderer as renderer_module

    class Plain(SplatRenderer):
        def render_chunk(self, image, fields, metric):
            keep = renderer_module.draw_stretched_surface
            renderer_module.draw_stretched_surface = lambda estimate, *_: estimate
            try:
                return super().render_chunk(image, fields, metric)
            finally:
                renderer_module.draw_stretched_surface = keep

    return Plain(backend="torch")


def pulls(size: int, points: int) -> dict:
    rows, g = [], torch.Generator().manual_seed(0)
    renderer, plain = SplatRenderer(), without_surface_redraw()
    for name, picture, boxes in pictures_with_boxes(size):
        volume = ProceduralPrior().predict(picture, seed=0)
        basis = ModalBasis.from_volume(volume)
        amplitude = basis.amplitude()[0]
        h, w = amplitude.shape
        allowed = amplitude > 0.5 * basis.lively()[0]
        if boxes is not None:
            inside = torch.zeros_like(allowed)
            for x0, y0, x1, y1 in boxes:
                inside[int(y0 * h):int(math.ceil(y1 * h)), int(x0 * w):int(math.ceil(x1 * w))] = True
            allowed &= inside
        edge = math.ceil(EDGE_SHARE * w)
        inner = torch.zeros_like(allowed)
        inner[edge:h - edge, edge:w - edge] = True
        candidates = torch.nonzero(allowed & inner)
        if len(candidates) == 0:
            continue
        image = picture[0].permute(1, 2, 0).numpy()
        ys, xs = np.mgrid[0:h, 0:w]
        for y, x in candidates[torch.randint(len(candidates), (points,), generator=g)].tolist():
            angle = float(torch.rand(1, generator=g)) * 2 * math.pi
            pull = (PULL_SHARE * w * math.cos(angle), PULL_SHARE * w * math.sin(angle))
            at = ((x + 0.5) / w, (y + 0.5) / h)
            motion = simulate(volume, [Action("pull", at, pull)], Controls(frames=RING_FRAMES, fps=30))
            frames = render_frames(renderer, picture, motion)[0].numpy()
            fields = motion.fields(0, RING_FRAMES)[:, 0].numpy()
            flows = [flow_between(image, frame) for frame in frames]
            d = np.array(pull)
            seen = flow_at(flows[0], x, y)
            # What optical flow reads at the point for an exact backward warp of the same field: where it cannot
            # see the simulated displacement (flat grass, dark water), no renderer could be measured there.
            simulated_at = fields[0][:, y, x]
            oracle = cv2.remap(image.astype(np.float32), *inverse_map(fields[0]), cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            oracle_seen = flow_at(flow_between(image, oracle), x, y)
            far = np.hypot(xs - x, ys - y) > FAR_SHARE * w
            unit = d / np.linalg.norm(d)
            measured = np.array([flow_at(f, x, y) @ unit for f in flows])
            simulated = fields[:, :, y, x] @ unit
            moved = np.hypot(*fields[0]) >= MOVED_PX
            plain_frame = render_frames(plain, picture, motion.replace(frame_count=1))[0, 0].numpy()
            rows.append({
                "picture": name, "at": [round(v, 4) for v in at], "pull": [round(v, 2) for v in pull],
                "followed": float(np.linalg.norm(seen) / np.linalg.norm(d)),
                "cosine": _cosine(seen, d),
                "simulated_over_pull": float(np.linalg.norm(simulated_at) / np.linalg.norm(d)),
                "followed_simulated": float(np.linalg.norm(seen) / max(np.linalg.norm(simulated_at), 1e-9)),
                "cosine_simulated": _cosine(seen, simulated_at),
                "measurable": bool(0.6 <= np.linalg.norm(oracle_seen) / max(np.linalg.norm(simulated_at), 1e-9) <= 1.4
                                   and _cosine(oracle_seen, simulated_at) >= 0.9),
                "far_median_over_pull": float(np.median(np.hypot(*flows[0].transpose(2, 0, 1))[far]) / np.linalg.norm(d)),
                "ring_correlation": float(np.corrcoef(measured, simulated)[0, 1]),
                "ring_relative_rms": float(np.sqrt(np.mean((measured - simulated) ** 2)) / np.abs(simulated).max()),
                "tearing": laplacian_ratio(frames[0], image, moved) if moved.any() else 1.0,
                "tearing_without_redraw": laplacian_ratio(plain_frame, image, moved) if moved.any() else 1.0,
                "notes": list(motion.notes)})
            print("  " + json.dumps(rows[-1]), file=sys.stderr, flush=True)  # progress: a row per pull
    followed = np.array([r["followed"] for r in rows])
    cosine = np.array([r["cosine"] for r in rows])
    measurable = np.array([r["measurable"] for r in rows])
    hit = (followed >= 0.6) & (followed <= 1.4) & (cosine >= 0.9)
    as_simulated = np.array([r["followed_simulated"] for r in rows])
    hit_simulated = ((as_simulated >= 0.6) & (as_simulated <= 1.4)
                     & (np.array([r["cosine_simulated"] for r in rows]) >= 0.9))
    return {"pulls": len(rows), "pictures": len({r["picture"] for r in rows}),
            "followed_median": float(np.median(followed)),
            "followed_share_0.6_to_1.4": float(np.mean((followed >= 0.6) & (followed <= 1.4))),
            "cosine_median": float(np.median(cosine)), "cosine_share_0.9": float(np.mean(cosine >= 0.9)),
            "share_0.6_to_1.4_and_cosine_0.9": float(np.mean(hit)),
            "measurable_pulls": int(measurable.sum()),
            "measurable_share_0.6_to_1.4_and_cosine_0.9": float(np.mean(hit[measurable])) if measurable.any() else 0.0,
            "measurable_share_following_simulation": float(np.mean(hit_simulated[measurable]))
            if measurable.any() else 0.0,
            "far_median_over_pull_worst": float(max(r["far_median_over_pull"] for r in rows)),
            "far_median_over_pull_median": float(np.median([r["far_median_over_pull"] for r in rows])),
            "ring_correlation_median": float(np.median([r["ring_correlation"] for r in rows])),
            "ring_relative_rms_median": float(np.median([r["ring_relative_rms"] for r in rows])),
            "tearing_median": float(np.median([r["tearing"] for r in rows])),
            "tearing_worst": float(max(r["tearing"] for r in rows)),
            "tearing_without_redraw_median": float(np.median([r["tearing_without_redraw"] for r in rows])),
            "tearing_without_redraw_worst": float(max(r["tearing_without_redraw"] for r in rows)),
            "limited_pulls": sum(bool(r["notes"]) for r in rows), "rows": rows}


def inverse_map(field: np.ndarray, scale: int = 1, steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The exact backward map of a forward field [2, H, W] (s + f(s) = q; damped fixed point, converges for
    magnifications below 1 / 0.6 + 1), on a grid `scale` times finer."""
    h, w = field.shape[1:]
    ys, xs = np.mgrid[0:h * scale, 0:w * scale].astype(np.float32)
    fine = [cv2.resize(c.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_LINEAR) * scale
            for c in field]
    sx, sy = xs.copy(), ys.copy()
    for _ in range(steps):
        fx = cv2.remap(fine[0], sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fy = cv2.remap(fine[1], sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sx, sy = sx - 0.6 * (sx + fx - xs), sy - 0.6 * (sy + fy - ys)
    return sx, sy


def bump(h: int, w: int, amplitude: float, kind: str) -> np.ndarray:
    """A smooth field [2, H, W]: a Gaussian bump shifting right by `amplitude` px at its centre, or expanding
    radially by up to `amplitude` px; its radius grows with the amplitude so that it never folds."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy, radius = 0.45 * w, 0.5 * h, 1.4 * amplitude + 6
    g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius ** 2))
    if kind == "shift":
        return np.stack([amplitude * g, 0 * g])
    k = amplitude / (radius * math.exp(-0.5))
    return np.stack([(xs - cx) * k * g, (ys - cy) * k * g])


def stretch(size: int) -> dict:
    picture = F.interpolate(read_image(ROOT / "samples" / "dandelion.jpg").permute(0, 3, 1, 2),
                            size=(round(size * 9 / 16), size), mode="area")
    h, w = picture.shape[-2:]
    image = picture[0].permute(1, 2, 0).numpy().astype(np.float32)
    fine = cv2.resize(image, (w * 4, h * 4), interpolation=cv2.INTER_CUBIC)
    out, renderer, plain = {}, SplatRenderer(), without_surface_redraw()
    for kind in ("shift", "expand"):
        for amplitude in (10, 20, 30):
            field = bump(h, w, amplitude, kind)
            truth = cv2.resize(cv2.remap(fine, *inverse_map(field, 4), cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE), (w, h), interpolation=cv2.INTER_AREA)
            backward = cv2.remap(image, *inverse_map(field), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            flow = torch.from_numpy(field).float()[None, None]
            metric = flow[0].norm(dim=1, keepdim=True) * (METRIC_REFERENCE_SIZE / max(h, w) * DEFAULT_TEMPERATURE)
            region = cv2.dilate((np.hypot(*field) > 0.5).astype(np.uint8), np.ones((5, 5))) > 0

            def psnr(frame):
                return 10 * math.log10(1 / float(np.mean((frame[region] - truth[region]) ** 2)))

            ours = renderer.render_chunk(picture, flow, metric)[0, 0].permute(1, 2, 0).numpy()
            before = plain.render_chunk(picture, flow, metric)[0, 0].permute(1, 2, 0).numpy()
            out[f"{kind}_{amplitude}px"] = {"renderer_db": psnr(ours), "without_redraw_db": psnr(before),
                                            "backward_warp_db": psnr(backward),
                                            "gap_to_backward_db": psnr(backward) - psnr(ours)}
    return {"cases": out, "worst_gap_to_backward_db": max(c["gap_to_backward_db"] for c in out.values()),
            "worst_gap_without_redraw_db": max(c["backward_warp_db"] - c["without_redraw_db"] for c in out.values())}


def random_volume(h=24, w=32, seed=0) -> SpectralVolume:
    g = torch.Generator().manual_seed(seed)
    coeffs = torch.randn(1, 16, 2, h, w, generator=g, dtype=torch.complex128) * 150
    return SpectralVolume(coeffs)


def linearity() -> dict:
    volume = random_volume()
    a = Action("pull", (0.4, 0.6), (0.6, 0.3), 0.3)  # within the points' reach
    b = Action("impulse", (0.7, 0.2), (-3.0, 1.0), 0.5)
    c = Controls(frames=60, fps=30)
    one = simulate(volume, [a], c).fields(0, 60)
    double = simulate(volume, [Action("pull", a.at, (1.2, 0.6), 0.3)], c).fields(0, 60)
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
            basis, x, v, _ = modal_state(volume, [Action("pull", (0.5, 0.5), (1.0, 0.25))], controls, times)
            e = modal_energy(basis, controls, x, v)[:, 0]
            worst_ours = max(worst_ours, float((e[1:] / e[:-1]).max()))
            omega, zeta = mode_frequencies(basis, controls)
            worst_euler = max(worst_euler, euler_energy_growth(omega, zeta, x[0, 0, 0], fps, controls.frames))
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
    motion = simulate(volume, [Action("pull", (0.15, 0.6), (10.0, 0.0))], Controls(frames=120))
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
    parser.add_argument("--points", type=int, default=2, help="pulls per picture, at random moving points")
    parser.add_argument("--size", type=int, default=256, help="width the pictures are resized to")
    parser.add_argument("--json", action="store_true", help="print all figures as one JSON object on the last line")
    args = parser.parse_args(argv)
    size = (args.size, round(args.size * 9 / 16))
    result = {"threads": torch.get_num_threads(), "size": args.size}
    for name, run in (("stretch", lambda: stretch(args.size)), ("pulls", lambda: pulls(args.size, args.points)),
                      ("linearity", linearity),
                      ("decay", decay), ("energy", energy), ("still", lambda: still_regions(size)),
                      ("speed", lambda: speed(size))):
        figures = run()
        result[name] = figures
        print(f"{name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in figures.items() if k not in ("rows", "cases")), flush=True)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
