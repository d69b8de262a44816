"""Does the built-in prior move what should move and keep still what should stay still? Measured on files.

    python benchmarks/mobility.py [--json] [--frames 120] [--pictures DIR] [--clips FILE ...] [--baseline REV]

1. Labelled pictures (benchmarks/pictures/labels.json: boxes of things that must stay still, such as faces,
   bodies, animals, bottles, buildings, and of things that should move, such as flowers, grass, water, hair):
   each picture, 512 px wide, is animated with the default workflow settings (seed 0, intensity 1, preset auto,
   120 frames at 30 fps looped, temperature 0.5), written as an MP4 (quality 90, as Save Loop writes it),
   decoded, and measured with optical flow (DIS) from the first decoded frame to every other frame. Per
   picture: the 90th percentile of the displacement over every pixel and frame inside the still boxes, its
   median inside the moving boxes, and their ratio. Goals: still p90 <= 0.25 px, moving median >= 0.5 px,
   ratio <= 0.3, on average over the pictures.
2. Real plant clips (benchmarks/clips/tree_wind.mp4 and --clips): the prior animates the clip's first frame;
   the per-pixel motion map (time RMS of the flow from the first frame, on a coarse grid of cells) of that
   animation is compared with the clip's own by Spearman rank correlation. Goal >= 0.3. The shipped
   samples/dandelion_sway.mp4 is reported too, but it is not real: the baseline prior made it.
3. Prediction time of Predict Spectral Volume's work (the prior at 768x432) on 2 CPU threads. Goal < 2 s.

The baseline is the prior as it was at git revision --baseline (default: the last commit before the prior
became a package), loaded from git and run in the same process on the same pictures.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.git_baseline import module_at  # noqa: E402
from gid_engine.loops.encode import write_loop  # noqa: E402
from gid_engine.loops.media import read_image, read_video  # noqa: E402
from gid_engine.pipeline import AnimateOptions, animate  # noqa: E402
from gid_engine.sources.base import PriorSource  # noqa: E402

BASELINE_REVISION = "8e895b3"
SYNTHETIC = {"dandelion_sway.mp4"}  # made by the baseline prior: a reference, not real motion
WIDTH = 512
GRID_CELLS = 24
# Below this, DIS flow on an encoded file is noise: a ratio's denominator is never taken smaller (a picture that
# does not move at all reads as a large ratio, not an infinite one).
FLOW_FLOOR = 0.05  # motion maps are compared on a grid this many cells wide


def load_baseline_prior(revision: str):
    """The prior module as it was at `revision`, imported beside today's engine (it uses only stable modules)."""
    return module_at(revision, "gid_engine/sources/prior.py", "gid_engine.sources").ProceduralPrior()


def at_width(picture: torch.Tensor, width: int = WIDTH) -> torch.Tensor:
    """[1, H, W, 3] -> [1, h, width, 3], even sides (H.264)."""
    h, w = picture.shape[1:3]
    height = max(2, round(h * width / w / 2) * 2)
    resized = F.interpolate(picture.permute(0, 3, 1, 2), size=(height, width), mode="area")
    return resized.permute(0, 2, 3, 1).contiguous()


def decoded_animation(picture: torch.Tensor, source, frames: int, folder: Path, name: str) -> np.ndarray:
    """The default workflow's loop of `picture` by `source`, through an MP4 file: decoded gray frames [N, h, w]."""
    looped, _ = animate(picture, AnimateOptions(frames=frames), source=source, device=torch.device("cpu"))
    path = write_loop(looped, folder / f"{name}.mp4", fps=30.0, quality=90)
    video, _ = read_video(path)
    gray = (video.numpy() * 255).round().astype(np.uint8)
    return np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in gray])


def flow_magnitudes(frames: np.ndarray, step: int = 2) -> np.ndarray:
    """|flow| from the first frame to every `step`-th frame: [T, h, w] pixels."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = []
    for frame in frames[step::step]:
        flow = dis.calc(frames[0], frame, None)
        out.append(np.hypot(flow[..., 0], flow[..., 1]))
    return np.stack(out)


def box_mask(boxes, scale: float, shape) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        mask[int(y0 * scale):int(np.ceil(y1 * scale)), int(x0 * scale):int(np.ceil(x1 * scale))] = True
    return mask


def picture_figures(magnitudes: np.ndarray, still: np.ndarray, moving: np.ndarray) -> dict:
    still_p90 = float(np.percentile(magnitudes[:, still], 90))
    moving_median = float(np.median(magnitudes[:, moving]))
    return {"still_p90_px": round(still_p90, 3), "moving_median_px": round(moving_median, 3),
            "ratio": round(still_p90 / max(moving_median, FLOW_FLOOR), 3)}


def labelled_pictures(folder: Path, priors: dict, frames: int, work: Path) -> dict:
    labels = json.loads((folder / "labels.json").read_text())
    rows = []
    for entry in labels:
        picture = read_image(folder / entry["file"])
        scale = WIDTH / picture.shape[2]
        picture = at_width(picture)
        shape = picture.shape[1:3]
        still = box_mask(entry["still"], scale, shape)
        moving = box_mask(entry["moves"], scale, shape)
        row = {"file": entry["file"]}
        for name, prior in priors.items():
            magnitudes = flow_magnitudes(decoded_animation(picture, prior, frames, work, f"{name}_{Path(entry['file']).stem}"))
            row[name] = picture_figures(magnitudes, still, moving)
        rows.append(row)
        print(f"  {entry['file']:<28} " + "  ".join(
            f"{name}: still p90 {row[name]['still_p90_px']:.2f} moving med {row[name]['moving_median_px']:.2f} "
            f"ratio {row[name]['ratio']:.2f}" for name in priors), flush=True)
    means = {name: {key: round(float(np.mean([row[name][key] for row in rows])), 3)
                    for key in ("still_p90_px", "moving_median_px", "ratio")} for name in priors}
    return {"pictures": rows, "mean": means}


def motion_map(magnitudes: np.ndarray) -> np.ndarray:
    """Time RMS of |flow| per pixel, averaged into a grid GRID_CELLS wide."""
    rms = np.sqrt((magnitudes ** 2).mean(0))
    h, w = rms.shape
    cells_h = max(1, round(GRID_CELLS * h / w))
    return cv2.resize(rms, (GRID_CELLS, cells_h), interpolation=cv2.INTER_AREA)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a.ravel())).astype(np.float64)
    rb = np.argsort(np.argsort(b.ravel())).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def clip_correlations(clips, priors: dict, frames: int, work: Path) -> list[dict]:
    rows = []
    for clip in clips:
        video, fps = read_video(clip)
        video = video[: int(round(4 * fps))]  # at most 4 s: motion maps settle well before
        gray = (video.numpy() * 255).round().astype(np.uint8)
        w = gray.shape[2]
        scale = WIDTH / w if w > WIDTH else 1.0
        own = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), None, fx=scale, fy=scale,
                                   interpolation=cv2.INTER_AREA) for f in gray])
        own_map = motion_map(flow_magnitudes(own, step=1))
        first = at_width(video[:1].contiguous(), own.shape[2] // 2 * 2)
        row = {"clip": Path(clip).name}
        for name, prior in priors.items():
            ours = motion_map(flow_magnitudes(decoded_animation(first, prior, frames, work, f"clip_{name}")))
            row[name] = round(spearman(ours, own_map), 3)
        rows.append(row)
        print(f"  {row['clip']:<28} " + "  ".join(f"{name}: Spearman {row[name]:+.2f}" for name in priors), flush=True)
    return rows


def prediction_seconds(prior, repeats: int = 3) -> float:
    picture = F.interpolate(read_image(ROOT / "samples" / "dandelion.jpg").permute(0, 3, 1, 2), size=(432, 768),
                            mode="area")
    prior.predict(picture, seed=0)  # warm-up (first calls allocate and import)
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        prior.predict(picture, seed=seed)
        times.append(time.perf_counter() - start)
    return round(min(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--pictures", type=Path, default=ROOT / "benchmarks" / "pictures")
    parser.add_argument("--clips", type=Path, nargs="*", default=[])
    parser.add_argument("--baseline", default=BASELINE_REVISION, help="git revision of the baseline prior")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    priors = {"baseline": load_baseline_prior(args.baseline), "ours": PriorSource()}
    clips = [ROOT / "benchmarks" / "clips" / "tree_wind.mp4", ROOT / "samples" / "dandelion_sway.mp4", *args.clips]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("labelled pictures (decoded MP4, DIS flow at 512 px width):")
        pictures = labelled_pictures(args.pictures, priors, args.frames, work)
        for name, mean in pictures["mean"].items():
            print(f"  mean {name:<9} still p90 {mean['still_p90_px']:.3f} px, moving median "
                  f"{mean['moving_median_px']:.3f} px, ratio {mean['ratio']:.3f}")
        print("real clips: Spearman correlation of motion maps (prior on the first frame vs the clip):")
        clips_rows = clip_correlations(clips, priors, args.frames, work)
    timing = {name: prediction_seconds(prior) for name, prior in priors.items()}
    print("prediction at 768x432, 2 threads: " + ", ".join(f"{name} {t:.2f} s" for name, t in timing.items()))
    goals = {
        "still_p90_px <= 0.25": pictures["mean"]["ours"]["still_p90_px"] <= 0.25,
        "moving_median_px >= 0.5": pictures["mean"]["ours"]["moving_median_px"] >= 0.5,
        "ratio <= 0.3": pictures["mean"]["ours"]["ratio"] <= 0.3,
        "real clip Spearman >= 0.3": all(row["ours"] >= 0.3 for row in clips_rows if row["clip"] not in SYNTHETIC),
        "prediction < 2 s": timing["ours"] < 2.0,
    }
    print("goals: " + ", ".join(f"{goal}: {'met' if ok else 'NOT met'}" for goal, ok in goals.items()))
    if args.json:
        print(json.dumps({"pictures": pictures, "clips": clips_rows, "prediction_s": timing, "goals": goals},
                         indent=1))


if __name__ == "__main__":
    main()
