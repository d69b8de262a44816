"""A procedural spectral motion prior: natural-looking oscillation from one picture, no weights.

In the spirit of stochastic motion textures (Chuang et al. 2005) and the paper's observed spectra. The pieces,
one module each:
- `cues`: what the picture shows, per pixel (vegetation, thin structures, texture, sky, skin, flames, water);
- `mobility`: how free each pixel is to move, from the cues and the preset;
- `fields`: edge-aware random fields, so pixels of one object share their phase and separate objects differ;
- `presets`: the motion character of each kind of scene;
- `model`: `ProceduralPrior`, which puts them together with the measured natural spectrum.

All random numbers come from a CPU torch.Generator and the work is done on CPU at a small grid, so a
seed gives the same motion on every device; only the final resize runs on the picture's device.
"""
from .model import OUTPUT_LONG_SIDE, WORK_LONG_SIDE, ProceduralPrior
from .presets import DEFAULT_PRESET, PRESETS, Preset, preset_named

__all__ = ["DEFAULT_PRESET", "OUTPUT_LONG_SIDE", "PRESETS", "Preset", "ProceduralPrior", "WORK_LONG_SIDE",
           "preset_named"]
