"""Motion from a video: long-range trajectories from a reference frame, then a spectral volume (paper §1).

Method (why):
- The paper measures flow from the reference frame *directly* to every later frame, so errors do not
  accumulate along the clip. We do the same with OpenCV's DIS flow (Kroeger et al. 2016): coarse-to-fine
  patch search plus variational refinement, dense, sub-pixel, and about 10x faster than Farneback at a
  similar or better accuracy on natural motion.
- Long clips drift far from the reference, where a cold direct search can lock onto the wrong match. Each
  direct search therefore starts from the previous frame's reference->frame flow (the chained estimate,
  warm start) and refines it against the reference itself: chaining gives the range, the direct match
  gives the accuracy.
- Confidence: forward-backward consistency (Sundaram et al. 2010) plus a photometric check after
  per-frame gain matching (flicker). Unreliable samples (occlusion, flicker, cuts) are replaced by the
  normalised convolution of the reliable neighbours, so they never reach the FFT as outliers.
- Duplicated frames (frame-rate conversion) show an earlier moment; their trajectories are interpolated
  in time from their neighbours instead.
- Camera motion: optionally a robust (RANSAC) affine or homography fit of the reference->frame flow on
  the reliable pixels, the static background being the dominant motion; what remains is the scene's own
  motion.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..imageops import gaussian_blur, work_size
from ..spectral.motion import trajectories_to_spectral_volume
from ..spectral.volume import DEFAULT_BINS, SpectralVolume

Progress = Callable[[int, int], None]

CAMERA_MODES = ("keep", "remove (affine)", "remove (homography)")
AUTO_REFERENCE = -1
# A frame whose change from the previous one is below this share of the clip's median change is a duplicate.
DUPLICATE_RATIO = 0.02
# Frames darker or flatter than this share of the clip's median are a fade-in (auto reference skips them).
FADE_RATIO = 0.95
# Below this luminance spread (0..1 units) in every frame there is nothing to track.
FLAT_CLIP_STD = 2e-3
# Photometric check (0..1 luminance) after gain matching, and the forward-backward test's constants.
PHOTO_TOLERANCE = 0.08
FB_RELATIVE = 0.01
FB_ABSOLUTE_PX2 = 0.5


@dataclasses.dataclass
class VideoMotionOptions:
    """How a clip becomes a spectral volume.

    reference: frame index the motion is measured from; AUTO_REFERENCE skips a fade-in.
    max_size: long side (pixels) the flow is computed at; the volume is on that grid. 0 = full size.
    camera: one of CAMERA_MODES. period: samples in the FFT window (0 = the clip from the reference);
    resample_fps: resample the trajectories in time to this rate first (0 = keep the clip's rate).
    """

    num_bins: int = DEFAULT_BINS
    reference: int = AUTO_REFERENCE
    max_size: int = 384
    camera: str = "keep"
    period: int = 0
    resample_fps: float = 0.0
    fill_unreliable: bool = True


@dataclasses.dataclass
class VideoMotion:
    volume: SpectralVolume  # batch 1, on the flow grid
    reference_image: torch.Tensor  # [H, W, 3] in 0..1 at the clip's size
    reliability: torch.Tensor  # [h, w] share of frames whose flow passed the checks, on the flow grid
    report: dict


def check_clip(frames, fps: float) -> torch.Tensor:
    """Frames (tensor [T, H, W, 3] or a sequence of [H, W, 3]) in 0..1 -> one float tensor; clear errors."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps: must be a positive number, got {fps}")
    if not isinstance(frames, torch.Tensor):
        frames = list(frames)
        sizes = {tuple(f.shape) for f in frames}
        if len(sizes) > 1:
            raise ValueError(f"frames: all frames must have the same size, got {sorted(sizes)}")
        frames = torch.stack([torch.as_tensor(f) for f in frames]) if frames else torch.empty(0, 0, 0, 3)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected [T, H, W, 3], got {tuple(frames.shape)}")
    if frames.shape[0] < 2:
        raise ValueError(f"frames: a clip needs at least 2 frames to show motion, got {frames.shape[0]}")
    if min(frames.shape[1:3]) < 8:
        raise ValueError(f"frames: {frames.shape[2]}x{frames.shape[1]} is too small; at least 8x8 pixels")
    frames = frames.float()
    if not bool(torch.isfinite(frames).all()):
        raise ValueError("frames: contain NaN or infinite values")
    return frames


def to_gray_u8(frames: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """[T, H, W, 3] -> [T, h, w] uint8 luminance at `size` (antialiased when shrinking)."""
    x = frames.permute(0, 3, 1, 2)
    gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    if tuple(gray.shape[-2:]) != size:
        gray = F.interpolate(gray, size=size, mode="bilinear", align_corners=False, antialias=True)
    return (gray[:, 0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def choose_reference(gray: np.ndarray) -> int:
    """First frame that is not part of a fade-in: as bright and as contrasted as the clip usually is."""
    means = gray.reshape(len(gray), -1).mean(axis=1)
    stds = gray.reshape(len(gray), -1).std(axis=1)
    ok = (means >= FADE_RATIO * np.median(means)) & (stds >= FADE_RATIO * np.median(stds))
    first = int(np.argmax(ok)) if ok.any() else 0
    return min(first, (len(gray) - 1) // 2)


def duplicate_frames(gray: np.ndarray) -> np.ndarray:
    """Boolean [T]: frame t repeats frame t-1 while the clip otherwise moves (frame-rate conversion)."""
    steps = np.abs(np.diff(gray.astype(np.int16), axis=0)).mean(axis=(1, 2))
    dup = np.zeros(len(gray), dtype=bool)
    median = float(np.median(steps)) if len(steps) else 0.0
    if median > 0.05:  # a still clip has no duplicates to speak of
        dup[1:] = steps < DUPLICATE_RATIO * median
    return dup


def match_gain(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale and offset `frame` so its mean and spread match the reference's (flicker, auto-exposure)."""
    f = frame.astype(np.float32)
    std = f.std()
    if std < 1e-3:
        return frame
    g = (f - f.mean()) * (reference.std() / std) + reference.mean()
    return np.clip(g + 0.5, 0, 255).astype(np.uint8)


def new_dis():
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # Full-resolution patches and more refinement: we want sub-pixel accuracy more than speed.
    dis.setFinestScale(0)
    dis.setPatchSize(8)
    dis.setPatchStride(3)
    dis.setVariationalRefinementIterations(10)
    dis.setUseSpatialPropagation(True)
    dis.setUseMeanNormalization(True)
    return dis


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at p + flow(p) (bilinear, border replicated)."""
    import cv2

    h, w = flow.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    coords = grid + flow
    return cv2.remap(image, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliable_mask(forward: np.ndarray, backward: np.ndarray, reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Forward-backward consistency and photometric agreement of reference->frame flow, [h, w] bool."""
    back = warp(backward, forward)
    h, w = forward.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    target = grid + forward
    inside = (target[..., 0] >= 0) & (target[..., 0] <= w - 1) & (target[..., 1] >= 0) & (target[..., 1] <= h - 1)
    err = ((forward + back) ** 2).sum(-1)
    consistent = err < FB_RELATIVE * ((forward ** 2).sum(-1) + (back ** 2).sum(-1)) + FB_ABSOLUTE_PX2
    seen = warp(frame.astype(np.float32), forward)
    photo = np.abs(seen - reference.astype(np.float32)) < PHOTO_TOLERANCE * 255
    return consistent & photo & inside


def fit_camera(flow: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray | None:
    """Displacement field [h, w, 2] of the dominant (background) motion, or None when it cannot be fitted."""
    import cv2

    h, w = flow.shape[:2]
    step = max(1, int(math.sqrt(h * w / 4000)))
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    keep = mask[ys, xs]
    if keep.sum() < 12:
        return None
    src = np.stack([xs[keep], ys[keep]], axis=-1).astype(np.float32)
    dst = src + flow[ys[keep], xs[keep]]
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    if mode == "remove (affine)":
        model, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0)
        if model is None:
            return None
        moved = grid @ model[:, :2].T.astype(np.float32) + model[:, 2].astype(np.float32)
    else:
        model, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
        if model is None:
            return None
        moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), model).reshape(h, w, 2)
    return (moved - grid).astype(np.float32)


def fill_from_reliable(flow: torch.Tensor, weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """Normalised convolution: unreliable pixels [n, 1, h, w] take the blur of reliable neighbours' flow."""
    num = gaussian_blur(flow * weight, sigma)
    den = gaussian_blur(weight, sigma)
    wide_num = gaussian_blur(flow * weight, sigma * 4)
    wide_den = gaussian_blur(weight, sigma * 4)
    estimate = torch.where(den > 1e-3, num / den.clamp(min=1e-6), wide_num / wide_den.clamp(min=1e-6))
    estimate = torch.where(wide_den > 1e-6, estimate, torch.zeros_like(estimate))
    return torch.where(weight > 0.5, flow, estimate)


def interpolate_duplicates(disp: torch.Tensor, dup: np.ndarray) -> torch.Tensor:
    """Replace trajectory samples of duplicated frames by linear interpolation between true frames."""
    if not dup.any():
        return disp
    true_t = np.flatnonzero(~dup)
    out = disp.clone()
    for t in np.flatnonzero(dup):
        after = true_t[true_t > t]
        before = true_t[true_t < t]
        if len(after) == 0:
            continue  # trailing duplicates: nothing to interpolate towards; keep the measured (frozen) value
        a, b = int(before[-1]), int(after[0])
        frac = (t - a) / (b - a)
        out[t] = disp[a] * (1 - frac) + disp[b] * frac
    return out


def resample_time(disp: torch.Tensor, fps: float, target_fps: float, period: int) -> torch.Tensor:
    """Trajectories [T, 2, h, w] at `fps` -> [period, 2, h, w] at `target_fps` (linear in time)."""
    if target_fps <= 0 or not math.isfinite(target_fps):
        raise ValueError(f"resample_fps: must be positive, got {target_fps}")
    available = disp.shape[0]
    needed_s = (period - 1) / target_fps
    have_s = (available - 1) / fps
    if needed_s > have_s + 1e-9:
        raise ValueError(f"period: {period} frames at {target_fps:g} fps need {needed_s:.2f} s of clip after the "
                         f"reference, but it has {have_s:.2f} s ({available} frames at {fps:g} fps)")
    pos = torch.arange(period, dtype=torch.float64) * (fps / target_fps)
    lower = pos.floor().long().clamp(max=available - 1)
    upper = (lower + 1).clamp(max=available - 1)
    frac = (pos - lower).to(disp.dtype).view(-1, 1, 1, 1).to(disp.device)
    return disp[lower] * (1 - frac) + disp[upper] * frac


def track(gray: np.ndarray, reference: int, camera: str, progress: Progress | None = None
          ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Reference->frame flow for frames reference..T-1: flows [n, h, w, 2], reliable [n, h, w], camera px."""
    n = len(gray) - reference
    h, w = gray.shape[1:]
    ref = gray[reference]
    forward_dis, backward_dis = new_dis(), new_dis()
    flows = np.zeros((n, h, w, 2), dtype=np.float32)
    reliable = np.ones((n, h, w), dtype=bool)
    camera_px = [0.0]
    previous = np.zeros((h, w, 2), dtype=np.float32)
    for i in range(1, n):
        frame = match_gain(gray[reference + i], ref)
        # Warm start from the previous frame's direct flow (chained estimate), refined against the reference.
        forward = forward_dis.calc(ref, frame, previous.copy())
        backward = backward_dis.calc(frame, ref, None)
        mask = reliable_mask(forward, backward, ref, frame)
        previous = forward
        if camera != "keep":
            background = fit_camera(forward, mask, camera)
            if background is not None:
                camera_px.append(float(np.median(np.linalg.norm(background, axis=-1))))
                forward = forward - background
            else:
                camera_px.append(float("nan"))
        flows[i], reliable[i] = forward, mask
        if progress is not None:
            progress(i, n - 1)
    return flows, reliable, camera_px


def extract_motion(frames, fps: float, options: VideoMotionOptions | None = None, *,
                   device: torch.device | str = "cpu", progress: Progress | None = None) -> VideoMotion:
    """A clip [T, H, W, 3] in 0..1 at `fps` -> its motion as a spectral volume measured from the reference frame."""
    options = options or VideoMotionOptions()
    frames = check_clip(frames, fps)
    if options.camera not in CAMERA_MODES:
        raise ValueError(f"camera: must be one of {', '.join(CAMERA_MODES)}, got {options.camera!r}")
    if options.num_bins < 1:
        raise ValueError(f"num_bins: must be at least 1, got {options.num_bins}")
    if options.max_size < 0 or options.period < 0 or options.resample_fps < 0:
        raise ValueError("max_size, period and resample_fps: must be 0 (automatic) or positive")
    t_all, height, width = frames.shape[:3]
    size = work_size(height, width, options.max_size) if options.max_size else (height, width)
    gray = to_gray_u8(frames, size)
    if float(gray.reshape(t_all, -1).std(axis=1).max()) < FLAT_CLIP_STD * 255:
        raise ValueError("frames: every frame is a single flat colour (an all-black clip?); there is no motion "
                         "to measure")
    if options.reference == AUTO_REFERENCE:
        reference = choose_reference(gray)
    elif 0 <= options.reference < t_all - 1:
        reference = options.reference
    else:
        raise ValueError(f"reference: must be -1 (auto) or a frame index below {t_all - 1}, got {options.reference}")
    dup = duplicate_frames(gray)[reference:]
    dup[0] = False
    flows, reliable, camera_px = track(gray, reference, options.camera, progress)

    disp = torch.from_numpy(flows).to(device).permute(0, 3, 1, 2)  # [n, 2, h, w]
    weight = torch.from_numpy(reliable).to(device).float().unsqueeze(1)
    weight[0] = 1.0
    if options.fill_unreliable:
        sigma = max(2.0, max(size) / 64)
        disp = torch.cat([fill_from_reliable(disp[i:i + 16], weight[i:i + 16], sigma)
                          for i in range(0, disp.shape[0], 16)])
    disp = interpolate_duplicates(disp, dup)
    clip_fps = float(fps)
    if options.resample_fps or options.period:
        target_fps = options.resample_fps or clip_fps
        period = options.period or int(math.floor((disp.shape[0] - 1) * target_fps / clip_fps)) + 1
        disp = resample_time(disp, clip_fps, target_fps, period)
        clip_fps = target_fps
    period = disp.shape[0]
    if period <= 2 * (options.num_bins - 1):
        raise ValueError(f"num_bins: {options.num_bins} bins need more than {2 * (options.num_bins - 1)} frames "
                         f"after the reference, the clip gives {period}; use at most {(period - 1) // 2 + 1} bins")
    reliability = weight[1:].mean(dim=0)[0] if weight.shape[0] > 1 else weight[0, 0]
    report = {"reference_frame": reference, "frames_used": period, "fps": clip_fps, "source_fps": float(fps),
              "source_frames": t_all, "flow_size": [size[1], size[0]], "duplicate_frames": int(dup.sum()),
              "reliable_share": round(float(reliability.mean()), 4),
              "camera_px_median": round(float(np.nanmedian(camera_px)), 4) if options.camera != "keep" else None,
              "camera_px_max": round(float(np.nanmax(camera_px)), 4) if options.camera != "keep" else None,
              "camera": options.camera}
    volume = trajectories_to_spectral_volume(disp, clip_fps, options.num_bins, metadata={"source": "video", **report})
    return VideoMotion(volume, frames[reference].cpu(), reliability.cpu(), report)


def motion_preview(motion: VideoMotion) -> torch.Tensor:
    """[h, w, 3] picture of the motion: brightness = mean amplitude (up to the 99th percentile), red = unreliable."""
    volume = motion.volume
    weights = torch.full((volume.num_bins,), 2.0 / volume.period, device=volume.device)
    weights[0] = 0.0  # DC is an offset, not motion
    amplitude = (volume.coeffs[0].abs().pow(2).sum(dim=1).sqrt() * weights.view(-1, 1, 1)).sum(dim=0)
    values = amplitude.flatten().float()
    values = values[::values.numel() // (1 << 20) + 1]  # torch.quantile refuses very large inputs
    top = torch.quantile(values, 0.99).clamp(min=1e-6)
    level = (amplitude / top).clamp(0, 1).float().cpu()
    doubt = (1 - motion.reliability.float().cpu()).clamp(0, 1)
    return torch.stack([level.maximum(doubt), level * (1 - doubt), level * (1 - doubt)], dim=-1)


def rerender_psnr(frames: Sequence | torch.Tensor, motion: VideoMotion, renderer=None,
                  device: torch.device | str = "cpu") -> dict:
    """Re-render the clip's later frames from its reference frame with the extracted motion (flow grid).

    Returns the mean PSNR (dB) of the re-render and of repeating the reference frame, over the frames the
    volume covers. Only meaningful without time resampling.
    """
    from ..spectral.motion import MotionTexture
    from ..render.renderer import SplatRenderer, render_frames

    frames = check_clip(frames, motion.volume.fps)
    volume = motion.volume
    h, w = volume.height, volume.width
    start = motion.report["reference_frame"]
    target = frames[start:start + volume.period].permute(0, 3, 1, 2)
    target = F.interpolate(target, size=(h, w), mode="bilinear", align_corners=False, antialias=True).to(device)
    texture = MotionTexture.from_volume(volume.to(device), volume.period, volume.fps, loop=False, anchored=True)
    rendered = render_frames(renderer or SplatRenderer(), target[:1], texture, out_device=device)[0].permute(0, 3, 1, 2)

    def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
        mse = (a.clamp(0, 1) - b).pow(2).mean(dim=(1, 2, 3)).clamp(min=1e-10)
        return float((10 * torch.log10(1 / mse)).mean())

    return {"psnr_motion": psnr(rendered[1:], target[1:]), "psnr_repeat": psnr(target[:1].expand_as(target[1:]), target[1:])}
