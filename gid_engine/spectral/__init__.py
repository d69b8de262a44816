"""Spectral volumes and motion textures: the type, the FFT both ways, normalization, edits, overlays."""
