"""Training pairs on disk: one reference picture and its spectral volume per file.

Layout of a dataset folder:
  manifest.json            {"format": "gid.dataset", "version": 1, "height", "width", "num_bins", "fps",
                            "period", "samples": [{"file", "source", ...}], "dropped": [{"source", "reason"}]}
  000000.safetensors ...   tensors "image" float16 [3, H, W] in 0..1, "real"/"imag" float32 [K, 2, H, W]
                           (a SpectralVolume without its batch axis); metadata "fps", "period", "source";
                           optionally "frames" float16 [M, 3, H, W] (later frames of the same window) and
                           "frame_times" float32 [M] (their times, in frames of the volume's sampling).
Sample files may sit in sub-folders (gid_engine.training.data shards them by clip); "file" is relative to the root.
The renderer trains on (image, frames[j], displacement of the volume at frame_times[j]) triples.
Written by the video-to-spectral-volume tools, read by the learned model's and the renderer's training.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import formats
from ..spectral.volume import SpectralVolume

MANIFEST = "manifest.json"


@dataclass
class TrainingPair:
    image: torch.Tensor  # [3, H, W] float32 in 0..1
    volume: SpectralVolume  # batch 1
    source: str = ""
    frames: torch.Tensor | None = None  # [M, 3, H, W] float32 in 0..1: later frames of the window
    frame_times: torch.Tensor | None = None  # [M] float32: their times in frames of the volume's sampling


def write_pair(path: str | Path, image: torch.Tensor, volume: SpectralVolume, source: str = "",
               frames: torch.Tensor | None = None, frame_times=None) -> Path:
    from safetensors.torch import save_file

    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got {tuple(image.shape)}")
    if volume.batch != 1 or (volume.height, volume.width) != tuple(image.shape[1:]):
        raise ValueError("volume must hold one motion on the picture's grid")
    coeffs = volume.coeffs[0].detach().to("cpu", torch.complex64)
    tensors = {"image": image.detach().cpu().clamp(0, 1).to(torch.float16).contiguous(),
               "real": coeffs.real.contiguous(), "imag": coeffs.imag.contiguous()}
    if frames is not None:
        times = torch.as_tensor(frame_times, dtype=torch.float32).reshape(-1)
        if frames.ndim != 4 or frames.shape[1:] != image.shape or times.numel() != frames.shape[0]:
            raise ValueError(f"frames must be [M, 3, H, W] on the picture's grid with M frame_times, got "
                             f"{tuple(frames.shape)} and {times.numel()} times")
        tensors["frames"] = frames.detach().cpu().clamp(0, 1).to(torch.float16).contiguous()
        tensors["frame_times"] = times.contiguous()
    meta = formats.TRAINING_PAIR.metadata(fps=repr(float(volume.fps)), period=str(volume.period), source=source)
    path = Path(path)
    save_file(tensors, str(path), metadata=meta)
    return path


def read_pair(path: str | Path, device="cpu") -> TrainingPair:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        formats.TRAINING_PAIR.check(meta, Path(path).name)
        image = f.get_tensor("image").float().to(device)
        coeffs = torch.complex(f.get_tensor("real"), f.get_tensor("imag")).unsqueeze(0).to(device)
        names = set(f.keys())
        frames = f.get_tensor("frames").float().to(device) if "frames" in names else None
        times = f.get_tensor("frame_times").float() if "frame_times" in names else None
    volume = SpectralVolume(coeffs, fps=float(meta["fps"]), period=int(meta["period"]))
    return TrainingPair(image, volume, meta.get("source", ""), frames, times)


class PairDataset(torch.utils.data.Dataset):
    """A dataset folder as (image [3, H, W], channels [4K, H, W]) items, the paper's 4K-channel layout."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(f"{self.root} has no {MANIFEST}; build it with python -m gid_engine.data")
        self.manifest = json.loads(manifest.read_text())
        formats.DATASET.check(self.manifest, str(manifest))
        self.files = [self.root / s["file"] for s in self.manifest["samples"]]

    def __len__(self) -> int:
        return len(self.files)

    def pair(self, index: int) -> TrainingPair:
        return read_pair(self.files[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.pair(index)
        return pair.image, pair.volume.to_channels()[0]


def write_manifest(root: str | Path, samples: list[dict], dropped: list[dict], *, height: int, width: int,
                   num_bins: int, fps: float, period: int, frames_per_pair: int = 0) -> Path:
    """frames_per_pair: target frames every sample holds for renderer training (0 = none)."""
    path = Path(root) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps({**formats.DATASET.metadata(), "height": height, "width": width,
                               "num_bins": num_bins, "fps": fps, "period": period, "frames_per_pair": frames_per_pair,
                               "samples": samples, "dropped": dropped}, indent=1))
    tmp.replace(path)
    return path
