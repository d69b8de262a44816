"""Motion sources: anything that turns a picture into a spectral volume (procedural prior, a video's
motion, saved volumes, the learned latent diffusion model in ldm/)."""
