"""Seamless loops of frame sequences [N, H, W, C] (any source: GID renders or other video models)."""
from __future__ import annotations

import torch

# A clip whose wrap step is at most this many times its median step already loops.
SEAMLESS_RATIO = 1.5


def step_differences(frames: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of each frame to the next, cyclically: entry N-1 is the wrap to frame 0."""
    if frames.shape[0] < 2:
        return torch.zeros(frames.shape[0])
    nxt = torch.roll(frames, -1, dims=0)
    return (nxt - frames).abs().flatten(1).mean(dim=1).float().cpu()


def seam_ratio(frames: torch.Tensor) -> float:
    """Wrap step (last -> first) over the median of the other steps; 1 means as smooth as any pair."""
    diffs = step_differences(frames)
    if diffs.numel() < 3:
        return 0.0 if diffs.numel() == 0 or float(diffs[-1]) == 0 else float("inf")
    median = float(diffs[:-1].median())
    wrap = float(diffs[-1])
    if median == 0:
        return 0.0 if wrap == 0 else float("inf")
    return wrap / median


def crossfade_loop(frames: torch.Tensor, overlap: int) -> torch.Tensor:
    """Loop of N - overlap frames: the tail fades into the head, so the wrap is an ordinary step."""
    n = frames.shape[0]
    if overlap <= 0:
        return frames
    if n < 2 * overlap + 1:
        raise ValueError(f"a crossfade of {overlap} frames needs at least {2 * overlap + 1} frames, got {n}")
    m = n - overlap
    out = frames[:m].clone()
    for i in range(1, overlap):
        a = i / overlap
        out[i] = frames[m + i] * (1 - a) + frames[i] * a
    # Frame 0 is frames[m], the successor of the last frame kept: the wrap is an ordinary step.
    out[0] = frames[m]
    return out


def resample_loop(frames: torch.Tensor, count: int) -> torch.Tensor:
    """Play one loop in `count` frames (cyclic linear blend; exact when the lengths divide)."""
    n = frames.shape[0]
    if count < 1:
        raise ValueError(f"frame count must be at least 1, got {count}")
    if count == n:
        return frames
    if count % n == 0:
        return frames.repeat_interleave(count // n, dim=0) if False else frames.repeat(count // n, 1, 1, 1)
    positions = torch.arange(count, dtype=torch.float64) * n / count
    lower = positions.floor().long()
    frac = (positions - lower).to(frames.dtype).view(-1, 1, 1, 1).to(frames.device)
    upper = (lower + 1) % n
    return frames[lower] * (1 - frac) + frames[upper] * frac


def rotate_to_picture(frames: torch.Tensor, picture: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Rotate the loop so it starts on the frame closest to `picture` [H, W, C]; returns (frames, shift)."""
    if picture.shape != frames.shape[1:]:
        raise ValueError(f"picture is {tuple(picture.shape)} but frames are {tuple(frames.shape[1:])}")
    distance = (frames - picture.to(frames.device, frames.dtype)).abs().flatten(1).mean(dim=1)
    shift = int(distance.argmin())
    return torch.roll(frames, -shift, dims=0), shift


def make_loop(frames: torch.Tensor, *, crossfade: int = -1, frames_per_loop: int = 0, repeats: int = 1,
              picture: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Turn any clip into a seamless loop.

    crossfade: -1 = only when the clip does not already loop (a quarter of its length), 0 = never, N = frames.
    frames_per_loop: 0 keeps the loop's own length. repeats: times the loop is played in the output.
    picture: when given, the loop starts on the frame closest to it.
    Returns the frames and a report (seam ratios before and after, what was done).
    """
    n = frames.shape[0]
    if n < 2:
        raise ValueError(f"a loop needs at least 2 frames, got {n}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    report = {"input_frames": n, "seam_ratio_before": seam_ratio(frames)}
    if crossfade < 0:
        crossfade = 0 if report["seam_ratio_before"] <= SEAMLESS_RATIO else max(1, n // 4)
    crossfade = min(crossfade, (n - 1) // 2)
    looped = crossfade_loop(frames, crossfade)
    report["crossfade_frames"] = crossfade
    if frames_per_loop:
        looped = resample_loop(looped, frames_per_loop)
    if picture is not None:
        looped, report["start_shift"] = rotate_to_picture(looped, picture)
    report["loop_frames"] = looped.shape[0]
    report["seam_ratio_after"] = seam_ratio(looped)
    if repeats > 1:
        looped = looped.repeat(repeats, 1, 1, 1)
    report["output_frames"] = looped.shape[0]
    return looped, report
