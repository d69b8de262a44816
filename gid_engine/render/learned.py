"""The learned feature-pyramid renderer (paper section 4) behind the same Renderer interface as SplatRenderer.

The paper: a feature extractor (ResNet-34-like) gives multi-scale features of the picture; each scale is
softmax-splatted with the motion, weighted by the motion magnitude; a synthesis network decodes the splatted
pyramid into the frame; trained on frames of real videos with the motion estimated from them.

Choices the paper leaves open, and ours (network in learned_model.py):
- Scales: the first keeps full resolution (the picture's own detail survives), then 1/2, 1/4, ... by stride-2
  residual blocks; widths/blocks per scale are in RendererConfig ("paper": ResNet-34's 3-4-6-3 blocks,
  widths 32-256; "tiny": 3 scales of one block). No normalization layers: every sample is computed on its own,
  so a batch split over processes gives the same gradients, and renders do not depend on the chunk size.
- Splat weight: the training-free renderer's importance_metric (time-averaged flow magnitude x temperature,
  default 0.5) times one learned factor exp(log_temperature), which starts at 1; at coarser scales the metric
  and flow are area-downsampled (flow in that scale's pixels). A metric passed to render_chunk (a user's
  importance mask) is scaled by the same factor.
- Decoder output: a residual added to the softmax-splatted picture whose holes are filled as SplatRenderer
  fills them (push-pull, background preferred). The last layer starts at zero, so an untrained network renders
  like that fill and training only has to learn corrections (disocclusions, edges, splat blur).
- Training data: (frame 0, frame t, flow 0->t) from gid_engine.training.dataset pairs, with the flow being the
  pair's spectral volume evaluated at t minus at 0 - the K-band motion the renderer gets at inference - rather
  than raw optical flow. Loss: L1 + multi-scale gradient loss (the VAE's gradient_consistency); no perceptual
  network is downloaded. Content moving in from outside the frame is left to the network (no border padding).
Checkpoints: safetensors with format "gid.renderer", the config in the metadata; validated before building.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import formats
from .learned_model import RENDERER_CONFIGS, LearnedRendererNet, RendererConfig

# Bytes at the start of pickled / zipped torch files (torch.save): refused with their own message.
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")


class LearnedRenderer:
    """A trained LearnedRendererNet as a Renderer (render_chunk), on whatever device its weights are."""

    def __init__(self, net: LearnedRendererNet, name: str = "learned feature-pyramid renderer"):
        self.net = net.eval()
        self.name = name
        self._cache: tuple[torch.Tensor, list[torch.Tensor]] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device) -> "LearnedRenderer":
        self.net.to(device)
        self.forget_features()
        return self

    def forget_features(self) -> None:
        """Drop the cached features of the last picture (they live on the device it was rendered on)."""
        self._cache = None

    @torch.no_grad()
    def render_chunk(self, image: torch.Tensor, fields: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        n, b, _, h, w = fields.shape
        dtype = next(self.net.parameters()).dtype
        image = image.to(self.device, dtype)
        # The picture's features are the same for every chunk of a render: encode once.
        if self._cache is None or self._cache[0] is not image and not torch.equal(self._cache[0], image):
            self._cache = (image, self.net.encoder(image))
        features = self._cache[1]
        flow = fields.to(self.device, dtype).reshape(n * b, 2, h, w)
        metric = metric.to(self.device, dtype)
        if b > 1:  # frame-major layout: frame i of picture j at i * b + j
            image, metric = (t.unsqueeze(0).expand(n, *t.shape).reshape(n * b, *t.shape[1:]) for t in (image, metric))
            features = [f.unsqueeze(0).expand(n, *f.shape).reshape(n * b, *f.shape[1:]) for f in features]
        frames = self.net(image, flow, metric, features=features).clamp(0, 1)
        return frames.reshape(n, b, 3, h, w).to(fields.device)


def save_renderer(net: LearnedRendererNet, path: str | Path, extra_metadata: dict | None = None) -> Path:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    meta = formats.RENDERER.metadata(config=net.config.to_json(),
                                     **{k: str(v) for k, v in (extra_metadata or {}).items()})
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # never a half-written checkpoint under the real name
    return path


def load_renderer(path: str | Path, device="cpu") -> LearnedRenderer:
    """Validated load: header, format, config and every tensor's name and shape are checked before any weight
    is used; pickled files are refused unread."""
    from safetensors import safe_open

    path = Path(path)
    refused = f"{path.name}: renderer checkpoints must be .safetensors files (pickled checkpoints are never loaded)"
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise ValueError(refused)
    try:
        meta = formats.read_header(path).metadata
    except ValueError:
        with path.open("rb") as f:
            if f.read(4).startswith(PICKLE_MAGIC):  # only checked once the file is no valid safetensors
                raise ValueError(refused) from None
        raise
    formats.RENDERER.check(meta, path.name)
    try:
        config = formats.read_config(RendererConfig, meta.get("config", ""), "renderer config")
    except ValueError as err:
        raise ValueError(f"{path.name} has a bad renderer config: {err}") from None
    # Shapes from a network on the meta device: nothing is allocated until the file's tensors proved to match,
    # so a small file cannot make us build a huge model.
    with torch.device("meta"):
        expected = LearnedRendererNet(config).state_dict()
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            names = set(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in names}
            missing, unexpected = sorted(set(expected) - names), sorted(names - set(expected))
            wrong = sorted(k for k in set(expected) & names if tuple(expected[k].shape) != shapes[k])
            if missing or unexpected or wrong:
                details = "; ".join(f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                                    for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                        ("wrong shape", wrong)) if keys)
                raise ValueError(f"{path.name}: the weights do not match the renderer config in the file ({details})")
            tensors = {k: f.get_tensor(k) for k in names}
    except ValueError:
        raise
    except Exception as err:  # safetensors reports damage with its own error types
        raise ValueError(f"cannot read {path.name}: {err}") from None
    bad = [k for k, v in tensors.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path.name}: weights contain NaN or infinity ({', '.join(bad[:4])})")
    net = LearnedRendererNet(config)
    net.load_state_dict(tensors)
    net.requires_grad_(False)  # inference only
    return LearnedRenderer(net.to(device), name=f"learned renderer ({path.stem})")


def new_renderer_net(config: str | RendererConfig = "tiny") -> LearnedRendererNet:
    return LearnedRendererNet(RENDERER_CONFIGS[config] if isinstance(config, str) else config)
