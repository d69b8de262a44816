"""The learned motion model: shapes, invariances, zero-init stage 2, DDIM, guidance, checkpoints, training."""
import dataclasses
import json
import struct

import pytest
import torch

from benchmarks.learned_model import build_dataset
from gid_engine.formats import read_config
from gid_engine.sources.checkpoints import load_motion_source
from gid_engine.sources.ldm.diffusion import (NoiseSchedule, add_noise, classifier_free_guidance, ddim_timesteps, sample_ddim,
                                      universal_guidance)
from gid_engine.sources.ldm.model import GIDMotionModel, MotionLDMConfig, displacement_from_channels, loop_loss
from gid_engine.sources.ldm.unet import FrequencyAttention, MotionUNet, UNetConfig
from gid_engine.sources.ldm.vae import SliceVAE, VAEConfig, gradient_consistency, vae_loss
from gid_engine.spectral.motion import displacement_at
from gid_engine.spectral.normalization import FrequencyNormalization
from gid_engine.spectral.volume import SpectralVolume
from gid_engine.training.train import TRAIN_CONFIGS, Trainer, load_state
from gid_engine.training.train import main as train_main

K = 4
MICRO = MotionLDMConfig(
    height=16, width=16, num_bins=K,
    vae=VAEConfig(channels=4, channel_mult=(1, 2), num_res_blocks=1),
    unet=UNetConfig(channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), head_channels=8,
                    frequency_heads=2),
)


def stage2(config):
    return dataclasses.replace(config, unet=dataclasses.replace(config.unet, frequency_attention=True))


def randomise(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module


def micro_model(config=MICRO, seed=0):
    torch.manual_seed(seed)
    return GIDMotionModel(config, FrequencyNormalization.default(K)).eval()


def unet_inputs(b=2, k=K, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b * k, 4, 8, 8, generator=g)
    t = torch.randint(1000, (b,), generator=g).repeat_interleave(k)
    freq = torch.arange(b * k) % k
    picture = torch.rand(b, 3, 8, 8, generator=g).repeat_interleave(k, 0) * 2 - 1
    return z, t, freq, picture, torch.ones(b * k)


# ----- VAE ---------------------------------------------------------------------------------------------------------
def test_vae_shapes_and_losses():
    vae = SliceVAE(MICRO.vae)
    x = torch.randn(6, 4, 16, 16)
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (6, 4, 8, 8)
    assert vae.decode(mean).shape == x.shape
    loss, parts = vae_loss(vae, x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and set(parts) == {"l1", "gradient", "kl"}
    loss.backward()
    assert all(p.grad is not None for p in vae.parameters())
    with pytest.raises(ValueError, match="multiples of 2"):
        vae.encode(torch.randn(1, 4, 15, 16))


def test_gradient_consistency_ignores_offsets_and_sees_structure():
    target = torch.randn(2, 4, 16, 16)
    assert gradient_consistency(target + 0.7, target) < 1e-6  # a constant offset has no gradient
    assert gradient_consistency(target.flip(-1), target) > 0.1


# ----- U-Net and frequency attention --------------------------------------------------------------------------------
def test_unet_shape_and_zero_initialised_output():
    unet = MotionUNet(MICRO.unet, K)
    out = unet(*unet_inputs(), num_bins=K)
    assert out.shape == (2 * K, 4, 8, 8)
    assert out.abs().max() == 0  # LDM's zero-initialised output convolution


def test_stage2_starts_exactly_at_stage1():
    s1 = randomise(MotionUNet(MICRO.unet, K))
    s2 = MotionUNet(stage2(MICRO).unet, K)
    missing, unexpected = s2.load_state_dict(s1.state_dict(), strict=False)
    assert not unexpected and missing and all(".frequency." in key for key in missing)
    inputs = unet_inputs()
    expected = s1(*inputs, num_bins=K)
    assert expected.abs().mean() > 1e-3
    assert torch.equal(s2(*inputs, num_bins=K), expected)
    # once the new layers have weights, the slices talk to each other
    with torch.no_grad():
        for layer in s2.modules():
            if isinstance(layer, FrequencyAttention):
                layer.out.weight.normal_(0, 0.2)
    assert not torch.allclose(s2(*inputs, num_bins=K), expected)


def test_frequency_attention_mixes_only_across_k_at_each_location():
    layer = randomise(FrequencyAttention(8, 2, max_bins=K))
    x = torch.randn(2 * K, 8, 5, 6)
    base = layer(x, K)
    poked = x.clone()
    poked[1, :, 2, 3] += torch.randn(8)  # picture 0, slice 1, one location (not a constant: LayerNorm hides it)
    diff = (layer(poked, K) - base).abs().sum(dim=1)  # [2K, 5, 6]
    assert diff[0:K, 2, 3].min() > 0  # every slice of picture 0 at that location changes
    diff[0:K, 2, 3] = 0
    assert diff.max() == 0  # nothing else: not other locations, not picture 1
    with pytest.raises(ValueError, match="batch \\* K"):
        layer(x[:5], K)


def test_stage2_unet_rows_of_different_pictures_are_independent():
    unet = randomise(MotionUNet(stage2(MICRO).unet, K))
    z, t, freq, picture, cond = unet_inputs(b=2)
    both = unet(z, t, freq, picture, cond, K)
    alone = unet(z[:K], t[:K], freq[:K], picture[:K], cond[:K], K)
    assert torch.allclose(both[:K], alone, atol=1e-5)


# ----- diffusion ----------------------------------------------------------------------------------------------------
def test_ddim_with_an_exact_denoiser_recovers_the_target():
    acp = NoiseSchedule().alphas_cumprod()
    target = torch.randn(3, 4, 8, 8, dtype=torch.float64)

    def oracle(z, t):
        a = float(acp[t])
        return (z - a ** 0.5 * target) / (1 - a) ** 0.5

    out = sample_ddim(oracle, torch.randn(3, 4, 8, 8, dtype=torch.float64), acp, steps=10)
    assert torch.allclose(out, target, atol=1e-8)
    assert ddim_timesteps(1000, 4) == [999, 666, 333, 0]
    noise = torch.randn(3, 4, 8, 8)
    prior = lambda z, t: (1 - float(acp[t])) ** 0.5 * z  # noqa: E731  (exact denoiser for z_0 ~ N(0, 1))
    stochastic = [sample_ddim(prior, noise, acp, 5, eta=1.0, generator=torch.Generator().manual_seed(s))
                  for s in (1, 1, 2)]
    assert torch.equal(stochastic[0], stochastic[1]) and not torch.allclose(stochastic[0], stochastic[2])
    assert not torch.allclose(stochastic[0], sample_ddim(prior, noise, acp, 5))
    z = add_noise(target, torch.zeros_like(target), torch.tensor([0, 0, 0]), acp)
    assert torch.allclose(z, acp[0].sqrt() * target)


@pytest.mark.parametrize("v_prediction", [False, True])
def test_training_target_converts_back_to_the_noise(v_prediction):
    model = micro_model(dataclasses.replace(MICRO, v_prediction=v_prediction))
    g = torch.Generator().manual_seed(5)
    z0, noise = torch.randn(6, 4, 8, 8, generator=g), torch.randn(6, 4, 8, 8, generator=g)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    target = model.training_target(z0, noise, t)
    zt = add_noise(z0, noise, t, model.alphas_cumprod)
    for i in range(len(t)):  # what sampling derives from a perfect output is the noise that was added
        assert torch.allclose(model.noise_from_output(target[i], zt[i], int(t[i])), noise[i], atol=1e-4)
    if v_prediction:  # at the last level v is almost -z0: the clean estimate stays well posed
        assert float((target[-1] + z0[-1]).abs().mean()) < 0.1
    else:
        assert torch.equal(target, noise)


def test_cfg_weight_zero_is_the_conditional_model_and_weight_w_follows_eq5():
    cond = lambda z, t: z * 2.0  # noqa: E731
    uncond = lambda z, t: z * 0.5  # noqa: E731
    z = torch.randn(2, 4, 3, 3)
    assert classifier_free_guidance(cond, uncond, 0.0) is cond
    assert torch.allclose(classifier_free_guidance(cond, uncond, 1.75)(z, 5), 2.75 * cond(z, 5) - 1.75 * uncond(z, 5))


def test_cfg_weight_zero_equals_conditional_sampling_in_the_model():
    model = micro_model()
    randomise(model.unet, seed=3)
    image = torch.rand(1, 3, 16, 16)
    plain = model.sample_normalized(image, seed=4, options=dataclasses.replace(model.sampling, steps=3))
    weight0 = model.sample_normalized(image, seed=4, options=dataclasses.replace(model.sampling, steps=3, cfg=0.0))
    weighted = model.sample_normalized(image, seed=4, options=dataclasses.replace(model.sampling, steps=3, cfg=2.0))
    assert torch.equal(plain, weight0) and not torch.allclose(plain, weighted)


def test_universal_guidance_lowers_the_loss():
    acp = NoiseSchedule().alphas_cumprod()
    goal = torch.full((2, 4, 4, 4), 0.5)

    def gaussian_prior(z, t):  # the exact denoiser for z_0 ~ N(0, 1): E[z_0 | z_t] = sqrt(a) z_t
        return (1 - float(acp[t])) ** 0.5 * z

    loss = lambda z0: (z0 - goal).abs().mean()  # noqa: E731
    oracle = gaussian_prior
    noise = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    plain = sample_ddim(oracle, noise, acp, steps=20)
    guided = sample_ddim(universal_guidance(oracle, loss, 100.0, acp), noise, acp, steps=20,
                         generator=torch.Generator().manual_seed(1), recurrence=2)
    assert loss(guided) < 0.7 * loss(plain)


def test_differentiable_inverse_fft_matches_the_engine():
    g = torch.Generator().manual_seed(0)
    coeffs = torch.complex(torch.randn(2, K, 2, 5, 7, generator=g), torch.randn(2, K, 2, 5, 7, generator=g))
    volume = SpectralVolume(coeffs * 10, period=150)
    times = [1.0, 2.0, 148.0, 149.0]
    ours = displacement_from_channels(volume.to_channels(), times, 150)
    assert torch.allclose(ours, displacement_at(volume, times).float(), atol=1e-4)
    assert loop_loss(torch.zeros(4, 2, 2, 5, 7)) == 0


# ----- the model as a motion source ---------------------------------------------------------------------------------
def test_predict_shapes_seeds_batches_mask_and_intensity():
    model = micro_model()
    randomise(model.unet, seed=1)
    images = torch.rand(2, 3, 20, 28)
    fast = {"steps": 3}
    a = model.predict(images, seed=7, sampling=fast)
    assert a.coeffs.shape == (2, K, 2, 20, 28) and (a.fps, a.period) == (30.0, 150)
    assert torch.equal(a.coeffs, model.predict(images, seed=7, sampling=fast).coeffs)  # eta 0: deterministic
    assert not torch.allclose(a.coeffs, model.predict(images, seed=8, sampling=fast).coeffs)
    one = model.predict(images[1:], seed=8, sampling=fast)  # picture i uses seed + i
    assert torch.allclose(one.coeffs, a.coeffs[1:], atol=1e-5)
    mask = torch.zeros(1, 1, 20, 28)
    mask[..., :10] = 1
    masked = model.predict(images, seed=7, mask=mask, intensity=2.0, sampling=fast)
    assert masked.coeffs[..., 10:].abs().max() == 0
    assert torch.allclose(masked.coeffs[..., :10], 2 * a.coeffs[..., :10], atol=1e-5)
    calls = []
    model.predict(images[:1], seed=0, sampling=fast, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]

    def cancel(done, total):
        raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError):
        model.predict(images[:1], progress=cancel, sampling=fast)
    with pytest.raises(ValueError, match="steps: -1 is out of range"):
        model.with_options(steps=-1)
    assert model.with_options(steps=0).sampling == model.sampling  # 0 = the checkpoint's default
    assert model.with_options(steps=3, cfg=1.5).sampling.steps == 3
    with pytest.raises(ValueError, match="preset: 'foliage' only applies to the built-in procedural prior"):
        model.with_options(preset="foliage")
    assert model.with_options(preset="auto").sampling == model.sampling  # the neutral value asks nothing
    with pytest.raises(ValueError, match="unknown options stepz"):
        model.predict(images, sampling={"stepz": 3})


class GaussianPriorDenoiser(torch.nn.Module):
    """Stands in for a trained U-Net: the exact denoiser when latents are N(0, 1)."""

    def __init__(self, alphas_cumprod):
        super().__init__()
        self.alphas_cumprod = alphas_cumprod

    def forward(self, z, t, freq, picture, conditioned, num_bins):
        return (1 - self.alphas_cumprod[t].float()).sqrt().view(-1, 1, 1, 1) * z


def test_reduced_precision_weights_sample_like_float32():
    model = micro_model()
    randomise(model.unet, seed=1)
    image = torch.rand(1, 3, 16, 16)
    full = model.predict(image, seed=3, sampling={"steps": 3}).coeffs
    half = model.to(dtype=torch.bfloat16).predict(image, seed=3, sampling={"steps": 3}).coeffs
    assert half.dtype == torch.complex64 and torch.isfinite(half).all()
    assert (half - full).abs().mean() < 0.1 * full.abs().mean()


def test_loop_guidance_runs_under_inference_mode_and_shrinks_the_loop_gap():
    image = torch.rand(1, 3, 16, 16)
    options = {"steps": 20, "loop_frames": 40}
    with torch.inference_mode():  # how ComfyUI loads models and runs nodes
        model = micro_model()
        model.vae.decoder = torch.nn.Upsample(scale_factor=2.0)  # a linear decoder keeps the test about guidance
        model.unet = GaussianPriorDenoiser(model.alphas_cumprod)
        plain = model.predict(image, seed=2, sampling=options)
        guided = model.predict(image, seed=2, sampling={**options, "loop_guidance": 200.0})

    def gap(v):
        f = displacement_at(v, [1, 40])
        return float((f[1] - f[0]).abs().mean())

    assert gap(guided) < 0.4 * gap(plain)
    assert 0.5 < guided.coeffs.abs().mean() / plain.coeffs.abs().mean() < 2  # guided, not collapsed or blown up


# ----- checkpoints --------------------------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    model = micro_model()
    randomise(model.unet, seed=5)
    path = model.save(tmp_path / "m.safetensors")
    loaded = load_motion_source(path)
    assert isinstance(loaded, GIDMotionModel) and loaded.config == model.config
    assert loaded.normalization == model.normalization
    image = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.predict(image, sampling={"steps": 2}).coeffs, model.predict(image, sampling={"steps": 2}).coeffs)

    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_motion_source(tmp_path / "cut.safetensors")
    import pickle
    (tmp_path / "pickle.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_motion_source(tmp_path / "pickle.safetensors")

    def rewrite_config(name, change):
        header_len = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + header_len])
        config = json.loads(header["__metadata__"]["config"])
        change(config)
        header["__metadata__"]["config"] = json.dumps(config)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        (tmp_path / name).write_bytes(struct.pack("<Q", len(text)) + text + data[8 + header_len:])
        return tmp_path / name

    wider = rewrite_config("wide.safetensors", lambda c: c["unet"].update(channels=16))
    with pytest.raises(ValueError, match="weights do not match the model config"):
        load_motion_source(wider)
    typo = rewrite_config("typo.safetensors", lambda c: c["vae"].update(chanels=4))
    with pytest.raises(ValueError, match="config.vae has unknown keys: chanels"):
        load_motion_source(typo)
    odd = rewrite_config("odd.safetensors", lambda c: c.update(height=15))
    with pytest.raises(ValueError, match="multiple of 4"):
        load_motion_source(odd)


def test_config_json_round_trip():
    for name in ("tiny", "paper"):
        config = TRAIN_CONFIGS[name].model
        assert read_config(MotionLDMConfig, config.to_json()) == config
    with pytest.raises(ValueError, match="config.unet.num_res_blocks must be a non-negative integer"):
        read_config(MotionLDMConfig, json.dumps({**json.loads(MICRO.to_json()),
                                              "unet": {**dataclasses.asdict(MICRO.unet), "num_res_blocks": "2"}}))


# ----- training ---------------------------------------------------------------------------------------------------
def test_training_smoke_all_phases_resume_and_cli(tmp_path, capsys):
    data = build_dataset(tmp_path / "data", 3, num_bins=K, size=16)
    cfg = dataclasses.replace(TRAIN_CONFIGS["tiny"], model=MICRO, steps={"vae": 3, "stage1": 3, "stage2": 2},
                              save_every=2, log_every=1, vae_slices=8)
    out = tmp_path / "out"
    final = Trainer(cfg, data, out, torch.device("cpu"), log=lambda text: None).run()
    model = load_motion_source(final)
    assert model.config.unet.frequency_attention and model.config.num_bins == K
    assert not load_motion_source(out / "gid_motion_stage1.safetensors").config.unet.frequency_attention
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["vae"] * 3 + ["stage1"] * 3 + ["stage2"] * 2
    assert all(r["loss"] > 0 for r in log)
    # a stage-2 step changed only the frequency-attention layers
    s1 = load_motion_source(out / "gid_motion_stage1.safetensors").state_dict()
    s2 = model.state_dict()
    assert all(torch.equal(v, s2[k]) for k, v in s1.items())
    assert any(v.abs().sum() > 0 for k, v in s2.items() if ".frequency." in k and k.endswith("out.weight"))

    # resume: an interrupted stage 2 continues from its saved step
    meta = load_state(out / "state_stage2.safetensors")[0]
    assert meta["complete"] == "true"
    messages = []
    longer = dataclasses.replace(cfg, steps={**cfg.steps, "stage2": 4})
    from safetensors.torch import load_file, save_file
    state = out / "state_stage2.safetensors"
    tensors = load_file(str(state))
    save_file(tensors, str(state), metadata={**meta, "complete": "false"})
    Trainer(longer, data, out, torch.device("cpu"), log=messages.append).run()
    assert "vae: already complete (state_vae.safetensors)" in messages
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["phase"] == "stage2"][-2:] == [3, 4]

    # the command line (in-process; the host tests run it as python -m gid_engine.train)
    with pytest.raises(SystemExit):
        train_main(["--config", "tiny", "--data", str(data), "--out", str(out)])
    assert "--resume" in capsys.readouterr().err
    big = build_dataset(tmp_path / "data32", 2, num_bins=K, size=32)
    assert train_main(["--config", "tiny", "--data", str(big), "--out", str(tmp_path / "cli"), "--vae-steps", "1",
                       "--stage1-steps", "1", "--stage2-steps", "1"]) == 0
    cli_model = load_motion_source(tmp_path / "cli" / "gid_motion.safetensors")
    assert isinstance(cli_model, GIDMotionModel) and cli_model.sampling.steps == TRAIN_CONFIGS["tiny"].sample_steps
    assert train_main(["--config", "tiny", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
