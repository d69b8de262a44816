"""The learned motion model of Generative Image Dynamics (paper §2-§5): a latent diffusion model that predicts
a spectral volume from one picture, and the means to train it (gid_engine.training.train).

Modules: vae (KL autoencoder of one 4-channel frequency slice), unet (denoiser with frequency attention),
diffusion (schedule, DDIM, classifier-free and universal guidance), model (GIDMotionModel, config, checkpoint).

Choices the paper leaves open, recorded here (the one place they live):
- VAE: LDM KL-autoencoder layout (ResBlocks, mid attention), no discriminator. Paper config: 128 channels,
  multipliers (1, 2, 4), i.e. downsampling f=4 (160x256 -> 40x64 latents), 2 ResBlocks per level. Posterior
  means (not samples) are the diffusion targets, scaled by latent_scale = 1 / std of training latents (as LDM).
  Loss terms are all per-element means (L1, gradient) or normalised by the input's element count (KL), so the
  paper's weights 1 / 0.2 / 1e-6 keep LDM's ratio of summed terms. Gradient consistency: L1 of horizontal and
  vertical differences of the residual, averaged over 4 scales (stride 1, 2, 4, 8).
- U-Net: the LDM U-Net (ResBlocks with zero-initialised residual branches, spatial self-attention, zero-initialised
  output conv). Paper config: 224 channels, multipliers (1, 2, 3, 4), 2 ResBlocks per level, attention at
  levels 1-3, 32 channels per head (LDM's unconditional f4 setting). The picture is resized (area) to the
  latent grid and mapped to -1..1. Pictures of another aspect ratio are squashed to the model grid and the
  predicted volume is resized back (displacements scaled per axis by SpectralVolume.resize).
- Frequency embedding: sinusoidal embedding of the bin index -> 2-layer MLP, added to the timestep embedding.
- Frequency attention: one layer after every spatial ResBlock/attention group and twice in the middle block;
  pre-LayerNorm, multi-head (4 heads in the paper config), learned relative-position bias over the bin offset,
  only the output projection zero-initialised (so stage 2 starts exactly at stage 1 and still learns).
- Stage 2 trains only the frequency-attention layers; everything from stage 1 is frozen.
- Noise schedule: LDM 'linear' (sqrt-linear betas 0.00085 -> 0.012, 1000 steps), epsilon prediction, MSE.
- Classifier-free guidance: the empty condition is a zero picture plus a learned null embedding added to the
  timestep embedding; training drops the condition with p = 0.1. Default sampling uses w = 0 (the paper gives
  w only for looping: 1.75). DDIM: evenly spaced timesteps, last step to alpha = 1; default 250 steps, eta 0.
- Seeds: the starting noise of picture i comes from a CPU generator seeded with seed + i, so a batch gives the
  same volumes as the pictures one by one, on any device; eta > 0 / recurrence noise comes from seed + 0x5EED.
- Looping guidance (§5): F_t comes from the predicted clean latent through the VAE decoder, the inverse
  normalization and the inverse FFT (all differentiated). "Velocity" is the temporal difference; the constraint
  compares t = 1 with t = T, T = period - 1 by default (the last frame of the ground-truth window, the window's
  frame 0 being the picture itself), configurable as loop_frames. The L1 norms are sums over pixels, axes and
  pictures of displacements measured in grid widths (so u = 200 gives a usable step size; in pixels it would
  have to shrink with the resolution). Self-recurrence re-noises z_{t-1} to level t with fresh noise and repeats the step.
- Training (gid_engine.training.train): AdamW without weight decay, learning rate decayed by a cosine from its peak to
  10% over each phase; every step takes a few pictures and all their K slices (VAE: a random subset of those
  slices; stage 1: an independent timestep per slice; stage 2: one timestep per picture). The frozen VAE
  encodes targets on the fly. Pairs on another grid are resized to the model's (bilinear with antialiasing for
  pictures, SpectralVolume.resize for volumes); K, fps and period come from the dataset. A resumed phase
  restarts its data order from a seed derived from the step it resumes at. Step counts, batches and rates of
  the "paper" config are ours (the paper gives none); "tiny" is sized to train in minutes on two CPU cores.
- Checkpoints: safetensors with float32 weights; metadata format "gid.motion_ldm", version, config JSON and
  FrequencyNormalization JSON and the default sampling options (the tiny config asks for 50 DDIM steps).
  The normalization's scales are the training set's 95th percentiles at the model grid, each raised to at
  least 1% of the largest so that bins that never move do not amplify noise.
"""
from .diffusion import NoiseSchedule, classifier_free_guidance, sample_ddim, universal_guidance
from .model import CONFIGS, GIDMotionModel, MotionLDMConfig, SamplingOptions
from .unet import MotionUNet, UNetConfig
from .vae import SliceVAE, VAEConfig

__all__ = ["CONFIGS", "GIDMotionModel", "MotionLDMConfig", "MotionUNet", "NoiseSchedule", "SamplingOptions",
           "SliceVAE", "UNetConfig", "VAEConfig", "classifier_free_guidance", "sample_ddim", "universal_guidance"]
