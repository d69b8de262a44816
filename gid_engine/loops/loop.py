"""Seamless loops of frame sequences [N, H, W, C] (any source: GID renders or other video models).

A loop is built as a plan (which input frames, blended how, make each output frame) and evaluated chunk
by chunk straight into the output batch, so the memory beyond the output itself stays below a few chunks
whatever the frame count, and a request too large for the memory limit is refused before anything is
allocated (`loop_output_bytes` is the estimate).
"""
from __future__ import annotations

from typing import Callable

import torch

from .. import checks
from .. import memory
from ..spectral.motion import FRAMES

# A clip whose wrap step is at most this many times its median step already loops.
SEAMLESS_RATIO = 1.5
# Frames of one chunk stay below this many bytes; a chunk's work needs at most SCRATCH_CHUNKS of them.
CHUNK_BYTES = 64 * 1024 * 1024
SCRATCH_CHUNKS = 6

# The loop's inputs (a host's widgets show the same ranges).
LIMITS = {"crossfade_frames": checks.Range(-1, 10000, whole=True),
          "frames_per_loop": checks.Range(0, FRAMES.maximum, whole=True), "repeats": checks.Range(1, 1000, whole=True)}
LOOP_ADVICE = "lower frames_per_loop or repeats, or loop a smaller or shorter clip"

# Loop frames for a tensor of loop-frame indices: [n] (long) -> [n, H, W, C].
FrameSource = Callable[[torch.Tensor], torch.Tensor]


def _frame_bytes(shape, dtype: torch.dtype) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count * torch.empty((), dtype=dtype).element_size()


def _chunk_frames(frame_bytes: int) -> int:
    return max(1, CHUNK_BYTES // max(frame_bytes, 1))


def _chunks(count: int, frame_bytes: int):
    step = _chunk_frames(frame_bytes)
    for start in range(0, count, step):
        yield start, min(start + step, count)


def _gather(frames: torch.Tensor) -> FrameSource:
    return lambda index: frames[index.to(frames.device)]


def step_differences(frames: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of each frame to the next, cyclically: entry N-1 is the wrap to frame 0."""
    n = frames.shape[0]
    if n < 2:
        return torch.zeros(n)
    diffs = []
    for start, stop in _chunks(n, _frame_bytes(frames.shape[1:], frames.dtype)):
        # A slice, not a gathered copy; only the chunk holding the wrap joins frame 0 to its tail.
        following = frames[start + 1:stop + 1] if stop < n else torch.cat([frames[start + 1:stop], frames[:1]])
        step = following - frames[start:stop]
        diffs.append(step.abs_().flatten(1).mean(dim=1).float().cpu())
    return torch.cat(diffs)


def seam_ratio(frames: torch.Tensor) -> float:
    """Wrap step (last -> first) over the median of the other steps; 1 means as smooth as any pair."""
    return seam_ratio_of(step_differences(frames))


def seam_ratio_of(diffs: torch.Tensor) -> float:
    """seam_ratio from cyclic step differences (entry N-1 the wrap), e.g. gathered chunk by chunk."""
    if diffs.numel() < 3:
        return 0.0 if diffs.numel() == 0 or float(diffs[-1]) == 0 else float("inf")
    median = float(diffs[:-1].median())
    wrap = float(diffs[-1])
    if median == 0:
        return 0.0 if wrap == 0 else float("inf")
    return wrap / median


class SeamMeter:
    """seam_ratio of a clip seen chunk by chunk ([n, ...] frames in order): for writers that keep no frames."""

    def __init__(self):
        self.steps: list[float] = []
        self.first = self.last = None

    def add(self, frames: torch.Tensor) -> None:
        if frames.shape[0] == 0:
            return
        frames = frames.float()
        joined = frames if self.last is None else torch.cat([self.last[None], frames])
        self.steps += (joined[1:] - joined[:-1]).abs().flatten(1).mean(1).tolist()
        # Copies: views would keep the whole first and last chunks alive.
        self.first = frames[0].clone() if self.first is None else self.first
        self.last = frames[-1].clone()

    def ratio(self) -> float:
        if self.first is None:
            return 0.0
        wrap = float((self.first - self.last).abs().mean())
        return seam_ratio_of(torch.tensor(self.steps + [wrap], dtype=torch.float64))


def _crossfaded(frames: torch.Tensor, overlap: int) -> tuple[int, FrameSource]:
    """The plan of a loop of N - overlap frames whose tail fades into its head."""
    n = frames.shape[0]
    if n < 2 * overlap + 1:
        raise ValueError(f"crossfade: {overlap} frames need a clip of at least {2 * overlap + 1} frames, got {n}; "
                         f"use at most {(n - 1) // 2}")
    m = n - overlap
    if overlap <= 0:
        return n, _gather(frames)

    def source(index: torch.Tensor) -> torch.Tensor:
        # Frame 0 is frames[m], the successor of the last frame kept: the wrap is an ordinary step.
        out = frames[torch.where(index < overlap, index + m, index).to(frames.device)]
        blended = ((index >= 1) & (index < overlap)).nonzero().flatten()
        if blended.numel():
            i = index[blended]
            a = (i.to(torch.float64) / overlap).to(frames.dtype).view(-1, 1, 1, 1).to(frames.device)
            out[blended.to(frames.device)] = (frames[(i + m).to(frames.device)] * (1 - a)
                                              + frames[i.to(frames.device)] * a)
        return out

    return m, source


def _retimed(length: int, source: FrameSource, count: int) -> FrameSource:
    """The plan of one loop of `length` frames played in `count` frames (cyclic linear blend)."""
    if count == length:
        return source

    def retimed(index: torch.Tensor) -> torch.Tensor:
        # Exact rational positions: frame j shows loop time j * length / count.
        numerator = index.to(torch.int64) * length
        lower = numerator // count
        frac_num = numerator - lower * count
        out = source(lower)
        blended = (frac_num > 0).nonzero().flatten()
        if blended.numel():
            frac = (frac_num[blended].to(torch.float64) / count).to(out.dtype).view(-1, 1, 1, 1).to(out.device)
            device_rows = blended.to(out.device)
            out[device_rows] = out[device_rows] * (1 - frac) + source((lower[blended] + 1) % length) * frac
        return out

    return retimed


def _render_into(out: torch.Tensor, source: FrameSource) -> torch.Tensor:
    for start, stop in _chunks(out.shape[0], _frame_bytes(out.shape[1:], out.dtype)):
        out[start:stop] = source(torch.arange(start, stop))
    return out


def _render(source: FrameSource, count: int, like: torch.Tensor) -> torch.Tensor:
    return _render_into(like.new_empty((count, *like.shape[1:])), source)


def crossfade_loop(frames: torch.Tensor, overlap: int) -> torch.Tensor:
    """Loop of N - overlap frames: the tail fades into the head, so the wrap is an ordinary step."""
    if overlap <= 0:
        return frames
    length, source = _crossfaded(frames, overlap)
    return _render(source, length, frames)


def resample_loop(frames: torch.Tensor, count: int) -> torch.Tensor:
    """Play one loop in `count` frames: frame j shows loop time j * N / count (cyclic linear blend between the
    two nearest frames; exact input frames wherever that time is a whole frame, e.g. every k-th for k * N)."""
    count = checks.integer("frames_per_loop", count, minimum=1)
    if count == frames.shape[0]:
        return frames
    return _render(_retimed(frames.shape[0], _gather(frames), count), count, frames)


def _closest_frame(source: FrameSource, length: int, picture: torch.Tensor) -> int:
    distances = []
    for start, stop in _chunks(length, _frame_bytes(picture.shape, picture.dtype)):
        chunk = source(torch.arange(start, stop))
        distances.append((chunk - picture.to(chunk.device, chunk.dtype)).abs().flatten(1).mean(dim=1).cpu())
    return int(torch.cat(distances).argmin())


def rotate_to_picture(frames: torch.Tensor, picture: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Rotate the loop so it starts on the frame closest to `picture` [H, W, C]; returns (frames, shift)."""
    if picture.shape != frames.shape[1:]:
        raise ValueError(f"picture is {tuple(picture.shape)} but frames are {tuple(frames.shape[1:])}")
    shift = _closest_frame(_gather(frames), frames.shape[0], picture)
    return torch.roll(frames, -shift, dims=0), shift


def _loop_length(input_frames: int, crossfade: int, frames_per_loop: int) -> int:
    return frames_per_loop or input_frames - max(crossfade, 0)


def loop_output_bytes(frame_shape, input_frames: int, *, crossfade: int = -1, frames_per_loop: int = 0,
                      repeats: int = 1, start_picture: bool = False, dtype: torch.dtype = torch.float32) -> int:
    """Upper bound of the bytes make_loop allocates: the output batch (none when the clip passes unchanged)
    plus its chunks' scratch.

    frame_shape: (H, W, C) of one frame. With crossfade -1 (decided from the clip) the bound assumes none.
    """
    frame = _frame_bytes(frame_shape, dtype)
    length = _loop_length(input_frames, crossfade, frames_per_loop)
    unchanged = crossfade <= 0 and length == input_frames and repeats == 1 and not start_picture
    output = 0 if unchanged else length * repeats * frame
    return output + SCRATCH_CHUNKS * min(_chunk_frames(frame), max(length, input_frames)) * frame


def make_loop(frames: torch.Tensor, *, crossfade: int = -1, frames_per_loop: int = 0, repeats: int = 1,
              picture: torch.Tensor | None = None, budget: memory.Budget = memory.free_bytes,
              advice: str = LOOP_ADVICE) -> tuple[torch.Tensor, dict]:
    """Turn any clip into a seamless loop.

    crossfade: -1 = only when the clip does not already loop (a quarter of its length), 0 = never, N = frames.
    frames_per_loop: 0 keeps the loop's own length, N retimes the loop to N frames (the same motion, slower
    or faster). repeats: times the loop is played in the output.
    picture: when given, the loop starts on the frame closest to it.
    budget: refuse (memory.RequestTooLarge, with `advice`) a request whose loop_output_bytes exceeds what it
    reports free on the frames' device; default: the memory the system reports free.
    Returns the frames and a report (seam ratios before and after, what was done).
    """
    n = frames.shape[0]
    if n < 2:
        raise ValueError(f"images: a loop needs at least 2 frames, got {n}")
    crossfade = LIMITS["crossfade_frames"].check("crossfade_frames", crossfade)
    frames_per_loop = LIMITS["frames_per_loop"].check("frames_per_loop", frames_per_loop)
    repeats = LIMITS["repeats"].check("repeats", repeats)
    if picture is not None and picture.shape != frames.shape[1:]:
        raise ValueError(f"picture is {tuple(picture.shape)} but frames are {tuple(frames.shape[1:])}")
    # Everything up to the output's allocation works in chunks: the seam decides the crossfade first, so the
    # estimate checked below is that of this very clip.
    report = {"input_frames": n, "seam_ratio_before": seam_ratio(frames)}
    if crossfade == -1:
        crossfade = 0 if report["seam_ratio_before"] <= SEAMLESS_RATIO else min(max(1, n // 4), (n - 1) // 2)
    need = loop_output_bytes(frames.shape[1:], n, crossfade=crossfade, frames_per_loop=frames_per_loop,
                             repeats=repeats, start_picture=picture is not None, dtype=frames.dtype)
    memory.check_fits(f"images: a loop of {_loop_length(n, crossfade, frames_per_loop)} frames x {repeats} repeats "
                      f"at {frames.shape[2]}x{frames.shape[1]}", need, frames.device, budget, advice)
    length, source = _crossfaded(frames, crossfade)
    report["crossfade_frames"] = crossfade
    if frames_per_loop:
        source, length = _retimed(length, source, frames_per_loop), frames_per_loop
    shift = 0
    if picture is not None:
        shift = _closest_frame(source, length, picture)
        report["start_shift"] = shift
    unchanged = crossfade == 0 and length == n and shift == 0
    if unchanged and repeats == 1:
        looped = frames  # nothing to do: the clip itself, no copy
    else:
        # The loop is written once into the head of the output and copied into each repeat: no other copy.
        looped = frames.new_empty((length * repeats, *frames.shape[1:]))
        if unchanged:
            looped[:length] = frames
        else:
            _render_into(looped[:length], source if shift == 0 else (lambda index: source((index + shift) % length)))
        for r in range(1, repeats):
            looped[r * length:(r + 1) * length] = looped[:length]
    report["loop_frames"] = length
    report["seam_ratio_after"] = report["seam_ratio_before"] if looped is frames else seam_ratio(looped[:length])
    report["output_frames"] = looped.shape[0]
    return looped, report
