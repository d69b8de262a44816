"""The spectral volume: per-pixel temporal Fourier coefficients of a motion texture (paper §1)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import checks, formats

# Paper's convention (gid-paper-facts §1): 30 fps, a 150-frame window (F_0 = 0 plus 149 future
# frames), unnormalised forward FFT, bins 0..15 with DC, i.e. 0.2 Hz steps up to 3.0 Hz.
DEFAULT_FPS = 30.0
DEFAULT_PERIOD = 150
DEFAULT_BINS = 16


# ----- conventions shared by every stage (each defined here only) ------------------------
def synthesis_weights(num_bins: int, period: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Weights [K] of the one-sided inverse DFT: 1/N for DC, 2/N above (the conjugate half folded in).

    Bin k's coefficient S_k contributes weights[k] * Re(S_k e^{2 pi i k t / N}) pixels at frame t.
    """
    weights = torch.full((num_bins,), 2.0 / period, dtype=dtype, device=device)
    weights[0] = 1.0 / period
    return weights


def at_rest_dc(coeffs: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """The 0 Hz coefficient [B, 2, H, W] that puts frame 0 of `coeffs` [B, K, 2, H, W] where `reference`'s
    frame 0 is (without a reference: at rest, zero displacement, so frame 0 is the picture itself).

    Frame 0's displacement is (S_0 + 2 sum_k Re S_k) / N, so the DC cancels what the other bins add.
    """
    if reference is None:
        return -2 * coeffs[:, 1:].real.sum(dim=1)
    return reference[:, 0] - 2 * (coeffs[:, 1:].real - reference[:, 1:].real).sum(dim=1)


def coherence_length(side: float, band: int) -> float:
    """How far (pixels, on a grid of long side `side`) the phase of non-DC bin `band` stays coherent in a
    natural scene: a quarter of the picture for the slowest sway, shrinking with frequency (branches sway
    together, leaves flutter locally)."""
    return side * 0.25 / (1 + 0.35 * band)


@dataclasses.dataclass(frozen=True)
class SpectralVolume:
    """Complex coefficients of the first K temporal frequency bins of each pixel's displacement.

    coeffs: complex tensor [B, K, 2, H, W]; axis 2 is (x, y). Displacements are in pixels of the
    H x W grid of `coeffs`, relative to the reference picture (frame 0). The coefficients are those
    of numpy's unnormalised forward FFT over `period` frames sampled at `fps`.
    """

    coeffs: torch.Tensor
    fps: float = DEFAULT_FPS
    period: int = DEFAULT_PERIOD
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        c = self.coeffs
        if not isinstance(c, torch.Tensor) or not c.is_complex():
            raise TypeError(f"SpectralVolume.coeffs must be a complex tensor, got {type(c).__name__} {getattr(c, 'dtype', '')}")
        if c.ndim != 5 or c.shape[2] != 2:
            raise ValueError(f"SpectralVolume.coeffs must have shape [B, K, 2, H, W], got {tuple(c.shape)}")
        if c.shape[1] < 1:
            raise ValueError("SpectralVolume needs at least one frequency bin")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"SpectralVolume.fps must be a positive number, got {self.fps}")
        # Bins must stay below Nyquist so the one-sided series is a real trajectory.
        if int(self.period) != self.period or self.period <= 2 * (c.shape[1] - 1):
            raise ValueError(
                f"SpectralVolume.period must be an integer > 2*(K-1) = {2 * (c.shape[1] - 1)}, got {self.period}")

    # ----- shape and meaning -------------------------------------------------------------
    @property
    def batch(self) -> int:
        return self.coeffs.shape[0]

    @property
    def num_bins(self) -> int:
        return self.coeffs.shape[1]

    @property
    def height(self) -> int:
        return self.coeffs.shape[3]

    @property
    def width(self) -> int:
        return self.coeffs.shape[4]

    @property
    def device(self) -> torch.device:
        return self.coeffs.device

    @property
    def frequencies_hz(self) -> list[float]:
        return [k * self.fps / self.period for k in range(self.num_bins)]

    @property
    def duration_s(self) -> float:
        return self.period / self.fps

    def replace(self, **changes) -> "SpectralVolume":
        return dataclasses.replace(self, **changes)

    def select(self, index: int) -> "SpectralVolume":
        return self.replace(coeffs=self.coeffs[index:index + 1])

    def synthesis_weights(self, dtype=torch.float32) -> torch.Tensor:
        """This volume's one-sided inverse-DFT weights [K] (see `synthesis_weights`), on its device."""
        return synthesis_weights(self.num_bins, self.period, dtype, self.device)

    def band_magnitude(self) -> torch.Tensor:
        """|S_k| of each pixel's (x, y) coefficient pair, [B, K, H, W]."""
        return self.coeffs.abs().pow(2).sum(dim=2).sqrt()

    def band_amplitude(self) -> torch.Tensor:
        """Mean per-pixel displacement amplitude (pixels) contributed by each bin, shape [B, K]."""
        return self.band_magnitude().mean(dim=(2, 3)) * self.synthesis_weights()

    def peak_displacement(self, include_dc: bool = True) -> torch.Tensor:
        """Upper bound of each pixel's displacement (pixels) from its rest position, [B, H, W]; without
        `include_dc`, of its oscillation alone (the 0 Hz term is a constant offset, not motion)."""
        weights = self.synthesis_weights()
        if not include_dc:
            weights[0] = 0.0
        return torch.einsum("bkhw,k->bhw", self.band_magnitude().float(), weights)

    def rms_displacement(self) -> torch.Tensor:
        """Time-RMS of each pixel's oscillation (pixels, 0 Hz offset excluded), [B, H, W].

        A bin of weight w and coefficient S_k is a sinusoid of amplitude w |S_k|, whose mean square is half
        its amplitude squared.
        """
        squares = self.coeffs[:, 1:].abs().pow(2).sum(dim=2)  # [B, K-1, H, W]
        half_square = (self.synthesis_weights(squares.dtype)[1:] ** 2 / 2).view(1, -1, 1, 1)
        return (half_square * squares).sum(dim=1).sqrt()

    # ----- conversions -------------------------------------------------------------------
    def to(self, device=None, dtype=None) -> "SpectralVolume":
        if dtype is not None and not dtype.is_complex:
            dtype = {torch.float16: torch.complex32, torch.float32: torch.complex64,
                     torch.float64: torch.complex128}.get(dtype)
            if dtype is None:
                raise ValueError("SpectralVolume dtype must be a complex or float dtype")
        return self.replace(coeffs=self.coeffs.to(device=device, dtype=dtype))

    def resize(self, height: int, width: int) -> "SpectralVolume":
        """Resample to another pixel grid; displacement vectors scale with the grid.

        Bin by bin into the result, so the memory beyond the result stays one bin's planes (an 8K volume
        is 8.5 GB; an interleaved copy of it would need that again several times).
        """
        if height < 1 or width < 1:
            raise ValueError(f"resize target must be at least 1x1, got {height}x{width}")
        if (height, width) == (self.height, self.width):
            return self
        downsizing = height < self.height or width < self.width
        coeffs = torch.empty((self.batch, self.num_bins, 2, height, width), dtype=self.coeffs.dtype,
                             device=self.device)
        scale = torch.tensor([width / self.width, height / self.height], device=self.device).view(1, 2, 1, 1)
        for k in range(self.num_bins):
            planes = torch.view_as_real(self.coeffs[:, k])  # [B, 2(xy), h, w, 2(re/im)]
            planes = planes.permute(0, 1, 4, 2, 3).reshape(self.batch, 4, self.height, self.width)
            planes = F.interpolate(planes.float(), size=(height, width), mode="bilinear", align_corners=False,
                                   antialias=downsizing).view(self.batch, 2, 2, height, width)
            coeffs[:, k] = torch.complex(planes[:, :, 0] * scale, planes[:, :, 1] * scale)
        return self.replace(coeffs=coeffs)

    def to_channels(self) -> torch.Tensor:
        """The paper's real 4K-channel layout [B, 4K, H, W]; per bin: Re x, Im x, Re y, Im y."""
        real = torch.view_as_real(self.coeffs)  # [B, K, 2(xy), H, W, 2(re/im)]
        real = real.permute(0, 1, 2, 5, 3, 4)  # [B, K, xy, re/im, H, W]
        return real.reshape(self.batch, self.num_bins * 4, self.height, self.width)

    @classmethod
    def from_channels(cls, channels: torch.Tensor, fps: float = DEFAULT_FPS, period: int = DEFAULT_PERIOD,
                      metadata: dict | None = None) -> "SpectralVolume":
        if channels.ndim != 4 or channels.shape[1] % 4:
            raise ValueError(f"channels must be [B, 4K, H, W], got {tuple(channels.shape)}")
        b, c, h, w = channels.shape
        real = channels.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 2, 4, 5, 3).contiguous()
        if real.dtype not in (torch.float32, torch.float64):
            real = real.float()
        return cls(torch.view_as_complex(real), fps=fps, period=period, metadata=dict(metadata or {}))

    # ----- files -------------------------------------------------------------------------
    def save(self, path: str | Path, extra_metadata: dict | None = None) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        coeffs = self.coeffs.detach().to("cpu", torch.complex64)
        meta = formats.SPECTRAL_VOLUME.metadata(fps=repr(float(self.fps)), period=str(int(self.period)),
                                                layout="B,K,xy,H,W",
                                                user=json.dumps({**self.metadata, **(extra_metadata or {})}))
        save_file({"real": coeffs.real.contiguous(), "imag": coeffs.imag.contiguous()}, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> "SpectralVolume":
        """Validated load: a clear ValueError naming the file for anything but a whole, finite GID volume."""
        from safetensors import safe_open

        path = Path(path)
        try:
            header = formats.read_header(path)
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read spectral volume {path.name}: {err}") from None
        meta = header.metadata
        formats.SPECTRAL_VOLUME.check(meta, path.name)
        parts = {key: header.tensors.get(key) for key in ("real", "imag")}
        if None in parts.values() or set(header.tensors) != {"real", "imag"}:
            raise ValueError(f"{path.name}: a spectral volume holds exactly the tensors real and imag, found "
                             f"{', '.join(sorted(header.tensors)) or 'none'}")
        shapes = {entry.shape for entry in parts.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 5 or next(iter(shapes))[2] != 2:
            raise ValueError(f"{path.name}: real and imag must share one shape [B, K, 2, H, W], got "
                             f"{' and '.join(str(list(e.shape)) for e in parts.values())}")
        if any(entry.dtype not in ("F32", "F64") for entry in parts.values()):
            raise ValueError(f"{path.name}: real and imag must be F32 or F64 tensors")
        try:
            fps, period = float(meta["fps"]), int(meta["period"])
            user = json.loads(meta.get("user", "{}"))
            if not isinstance(user, dict):
                raise ValueError("user metadata is not an object")
        except (KeyError, ValueError) as err:
            raise ValueError(f"{path.name}: bad spectral volume metadata ({err})") from None
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                real, imag = f.get_tensor("real"), f.get_tensor("imag")
        except Exception as err:  # safetensors reports damage with its own error type
            raise ValueError(f"cannot read spectral volume {path.name}: {err}") from err
        for name, part in (("real", real), ("imag", imag)):
            checks.finite_tensor(f"{path.name}: {name}", part)
        try:
            return cls(torch.complex(real, imag).to(device), fps=fps, period=period, metadata=user)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path.name}: {err}") from None
