"""Rendering: the softmax-splatting operator and the renderers built on it."""
