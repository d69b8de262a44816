"""Every node of the pack, in process: schema, execution on small inputs, what it hands the browser, and the
runtime services it uses (progress, cancel, memory refusal, model management)."""
from __future__ import annotations

import json

import pytest
import torch

from gid_engine.spectral.volume import SpectralVolume
from node_harness import engine, run_node

import comfy_fakes

COVERED = {"GID_LoadGIDModel", "GID_PredictSpectralVolume", "GID_MotionTexture", "GID_SoftmaxSplatRender",
           "GID_LoopVideo", "GID_VideoToSpectralVolume", "GID_SaveSpectralVolume", "GID_LoadSpectralVolume",
           "GID_EditSpectrum", "GID_LoadGIDRenderer", "GID_SaveLoop", "GID_RenderLoopFile",
           "GID_InteractiveDynamics", "GID_MotionTracks"}
H, W = 24, 32


def picture(batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, H, W, 3, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def volume(pack):
    model = run_node(pack.LoadGIDModel).result[0]
    return run_node(pack.PredictSpectralVolume, gid_model=model, image=picture(), seed=3).result[0]


@pytest.fixture
def motion_texture(pack, volume):
    return run_node(pack.MotionTexture, spectral_volume=volume, frames=6, fps=12.0).result[0]


def test_every_node_has_a_test_and_a_schema_comfyui_accepts(pack):
    ids = {node.GET_SCHEMA().node_id for node in pack.NODES}
    assert ids == COVERED, f"nodes without an in-process test: {sorted(ids - COVERED)}"
    for node in pack.NODES:
        info = node.GET_NODE_INFO_V1()
        assert info["category"] == "GID" and info["display_name"] and info["description"]


def test_procedural_motion_from_load_and_predict(pack, runtime):
    model = run_node(pack.LoadGIDModel).result[0]
    out = run_node(pack.PredictSpectralVolume, gid_model=model, image=picture(2), seed=3)
    volume = out.result[0]
    assert (volume.batch, volume.height, volume.width) == (2, H, W)
    assert float(volume.coeffs.abs().amax()) > 0
    overlays = out.ui["gid_motion"]
    assert len(overlays) == 2 and all(item["type"] == "temp" and item["peak_px"] > 0 for item in overlays)
    assert runtime.progress[-1] == (2, 2)
    mobility = out.result[1]
    assert mobility.shape == (2, H, W) and float(mobility.min()) >= 0 and float(mobility.max()) <= 1
    assert len(out.ui["gid_mobility"]) == 2


def test_motion_brush_stills_what_it_paints_and_is_refused_by_name(pack):
    model = run_node(pack.LoadGIDModel).result[0]
    image = picture()
    image[..., 1] = 0.7  # green: the prior moves all of it
    brush = '{"strokes": [{"kind": "still", "points": [[0.25, 0.5]], "radius": 0.2}]}'
    volume, mobility = run_node(pack.PredictSpectralVolume, gid_model=model, image=image, seed=1,
                                motion_brush=brush).result
    assert float(mobility[0, 10:14, 6:10].max()) < 0.01 < float(mobility[0, :, 24:].mean())
    assert float(volume.coeffs[0, 1:, :, 10:14, 6:10].abs().max()) < 1e-3
    with pytest.raises(ValueError, match="motion_brush"):
        run_node(pack.PredictSpectralVolume, gid_model=model, image=image, seed=1, motion_brush='{"strokes": 3}')


def test_motion_tracks_follow_the_texture(pack, motion_texture):
    tracks, coordinates, length = run_node(pack.MotionTracks, motion_texture=motion_texture, count=4).result
    assert length == 6
    parsed = json.loads(coordinates)
    assert len(parsed) >= 1 and len(parsed[0]) == 6 and {"x", "y"} <= set(parsed[0][0])


def test_motion_texture_samples_the_volume_lazily(pack, volume):
    texture, fps = run_node(pack.MotionTexture, spectral_volume=volume, frames=9, fps=15.0, speed=0.5).result
    assert (texture.frame_count, fps) == (9, 15.0)
    with pytest.raises(ValueError, match="frames"):
        run_node(pack.MotionTexture, spectral_volume=volume, frames=0)


def test_render_then_loop_then_save(pack, motion_texture, runtime, comfy_folders):
    image = picture()
    frames, fps = run_node(pack.SoftmaxSplatRender, image=image, motion_texture=motion_texture).result[:2]
    assert frames.shape == (6, H, W, 3) and fps == 12.0
    assert bool(((frames >= 0) & (frames <= 1)).all())
    assert runtime.progress[-1] == (6, 6)
    looped = run_node(pack.LoopVideo, images=frames, fps=fps, frames_per_loop=8)
    loop_frames, loop_fps, count = looped.result
    assert loop_frames.shape[0] == count == 8 and loop_fps == fps
    assert looped.ui["gid_loop"][0]["output_frames"] == 8 and looped.ui["gid_preview"][0]["frame_count"] == 8
    saved = run_node(pack.SaveLoop, hidden={"prompt": {"1": {}}}, images=loop_frames, fps=fps, format="webp",
                     filename_prefix="gid/test_loop")
    shown, = saved.ui["images"]
    path = comfy_folders["output"] / shown["subfolder"] / shown["filename"]
    assert path.is_file() and path.stat().st_size > 0 and shown["type"] == "output"


def test_render_loop_file_writes_one_file_per_picture_and_cancel_leaves_none(pack, volume, runtime, comfy_folders):
    texture = run_node(pack.MotionTexture, spectral_volume=volume, frames=4, fps=8.0).result[0]
    out = run_node(pack.RenderLoopFile, image=picture(), motion_texture=texture, format="gif",
                   filename_prefix="gid/file_test")
    shown, = out.ui["images"]
    assert (comfy_folders["output"] / shown["subfolder"] / shown["filename"]).is_file()
    assert out.ui["gid_loop"][0]["loop_frames"] == 4
    before = sorted(p.name for p in (comfy_folders["output"] / "gid").iterdir())
    runtime.interrupt_after_updates = 1
    with pytest.raises(comfy_fakes.InterruptProcessingException):
        run_node(pack.RenderLoopFile, image=picture(), motion_texture=texture, format="gif",
                 filename_prefix="gid/file_test")
    assert sorted(p.name for p in (comfy_folders["output"] / "gid").iterdir()) == before


def test_a_render_too_large_for_free_memory_is_refused_before_it_starts(pack, motion_texture, runtime):
    runtime.free_bytes = 1000
    runtime.progress.clear()
    with pytest.raises(ValueError, match=r"motion_texture: rendering 6 frames of 32x24 needs about"):
        run_node(pack.SoftmaxSplatRender, image=picture(), motion_texture=motion_texture)
    assert runtime.freed, "ComfyUI is asked to free cached models before refusing"
    assert not runtime.progress


def test_save_then_load_spectral_volume(pack, volume, comfy_folders):
    saved = run_node(pack.SaveSpectralVolume, spectral_volume=volume, filename_prefix="gid/motion")
    assert saved.ui is None  # nothing for the browser: the file is listed by Load Spectral Volume
    path, = (comfy_folders["output"] / "gid").glob("motion_*.safetensors")
    listed = f"gid/{path.name} [output]"
    loaded = run_node(pack.LoadSpectralVolume, file=listed).result[0]
    assert torch.allclose(loaded.coeffs, volume.coeffs)
    with pytest.raises(ValueError, match="not one of the files this node lists"):
        run_node(pack.LoadSpectralVolume, file="../../secret.safetensors")


def test_video_to_spectral_volume_measures_a_sway(pack):
    t = torch.arange(10, dtype=torch.float32)
    x = torch.arange(W, dtype=torch.float32)
    shift = 2 * torch.sin(2 * torch.pi * t / 10).view(-1, 1, 1)
    stripes = 0.5 + 0.4 * torch.sin((x.view(1, 1, -1) - shift) * 0.6)
    clip = stripes.expand(10, H, W).unsqueeze(-1).expand(10, H, W, 3).contiguous()
    out = run_node(pack.VideoToSpectralVolume, images=clip, fps=10.0, max_size=0)
    volume, reference, preview = out.result
    assert (volume.height, volume.width) == (H, W) and reference.shape == (1, H, W, 3)
    assert preview.shape[0] == 1
    assert out.ui["gid_video_motion"][0] and out.ui["gid_motion"]
    assert float(volume.coeffs[:, :, 0].abs().mean()) > float(volume.coeffs[:, :, 1].abs().mean())  # it sways in x


def test_edit_spectrum_magnifies_and_refuses_bad_json_at_queue_time(pack, volume):
    out = run_node(pack.EditSpectrum, spectral_volume=volume, edit=json.dumps({"magnify": 2}))
    assert torch.allclose(out.result[0].coeffs, 2 * volume.coeffs, atol=1e-6)
    assert out.ui["gid_spectrum"] and out.ui["gid_motion"]
    with pytest.raises(ValueError, match="edit"):
        run_node(pack.EditSpectrum, spectral_volume=volume, edit="{not json")


def test_interactive_dynamics_pull_and_release(pack, volume):
    actions = json.dumps([{"type": "pull", "at": [0.5, 0.5], "pull": [4, 0]}])
    out = run_node(pack.InteractiveDynamics, spectral_volume=volume, actions=actions, frames=5, fps=10.0,
                   image=picture())
    texture, fps = out.result
    assert texture.frame_count == 5 and fps == 10.0
    # The texture keeps its objects' modes: the point lands where it was pulled, also on a volume whose pixels sway
    # out of step (where the input volume's own modes would move it elsewhere).
    h, w = volume.height, volume.width
    g = torch.Generator().manual_seed(0)
    rough = SpectralVolume(torch.randn(1, volume.num_bins, 2, h, w, 2, generator=g).mul(40).contiguous()
                           .view(torch.complex64).squeeze(-1), volume.fps, volume.period)
    small = json.dumps([{"type": "pull", "at": [0.5, 0.5], "pull": [1.5, 0]}])  # within the point's reach
    texture, _ = run_node(pack.InteractiveDynamics, spectral_volume=rough, actions=small, frames=2,
                          fps=10.0).result
    assert not texture.notes
    released = texture.fields(0, 1)[0, 0, :, h // 2, w // 2].float().cpu()
    assert torch.allclose(released, torch.tensor([1.5, 0.0]), atol=0.2), released
    payload, = out.ui["gid_dynamics"]
    assert payload["picture"]["type"] == "temp"
    with pytest.raises(ValueError, match="actions"):
        run_node(pack.InteractiveDynamics, spectral_volume=volume, actions="[{]")


def test_learned_renderer_is_listed_loaded_and_rendered_under_model_management(pack, motion_texture, runtime,
                                                                                comfy_folders):
    learned = engine("render.learned")
    torch.manual_seed(0)
    folder = comfy_folders["models"] / "gid"
    folder.mkdir(exist_ok=True)
    learned.save_renderer(learned.new_renderer_net("tiny"), folder / "tiny_renderer.safetensors")
    assert "tiny_renderer.safetensors" in pack.LoadGIDRenderer.GET_NODE_INFO_V1()["input"]["required"][
        "renderer_name"][1]["options"]
    model = run_node(pack.LoadGIDRenderer, renderer_name="tiny_renderer.safetensors").result[0]
    assert not runtime.loaded  # loaded to the compute device only when it renders
    frames = run_node(pack.SoftmaxSplatRender, image=picture(), motion_texture=motion_texture,
                      renderer_model=model).result[0]
    assert frames.shape == (6, H, W, 3)
    assert runtime.loaded == [model.patcher] and runtime.loaded[0].model.model is model.renderer.net
    with pytest.raises(ValueError, match="not one of the files this node lists"):
        run_node(pack.LoadGIDRenderer, renderer_name="/etc/passwd")


def test_learned_motion_model_predicts_under_model_management(pack, runtime, comfy_folders):
    ldm = engine("sources.ldm.model")
    vae, unet = engine("sources.ldm.vae"), engine("sources.ldm.unet")
    normalization = engine("spectral.normalization").FrequencyNormalization.default(4)
    config = ldm.MotionLDMConfig(height=16, width=16, num_bins=4,
                                 vae=vae.VAEConfig(channels=4, channel_mult=(1, 2), num_res_blocks=1),
                                 unet=unet.UNetConfig(channels=8, channel_mult=(1, 2), num_res_blocks=1,
                                                      attention_levels=(1,), head_channels=8, frequency_heads=2))
    torch.manual_seed(0)
    folder = comfy_folders["models"] / "gid"
    folder.mkdir(exist_ok=True)
    ldm.GIDMotionModel(config, normalization).save(folder / "micro_motion.safetensors")
    model = run_node(pack.LoadGIDModel, model_name="micro_motion.safetensors").result[0]
    volume = run_node(pack.PredictSpectralVolume, gid_model=model, image=picture(), seed=1, steps=2).result[0]
    assert (volume.num_bins, volume.height, volume.width) == (4, H, W)
    assert runtime.loaded == [model.patcher]


def test_widgets_show_the_limits_their_stage_checks(pack):
    loop, motion, renderer = engine("loops.loop"), engine("spectral.motion"), engine("render.renderer")

    def widget(node, name):
        info = node.INPUT_TYPES()
        spec = {**info["required"], **info.get("optional", {})}[name][1]
        return spec["min"], spec["max"]

    for name, limit in loop.LIMITS.items():
        assert widget(pack.LoopVideo, name) == (limit.minimum, limit.maximum)
    for node in (pack.MotionTexture, pack.LoopVideo, pack.SaveLoop):
        assert widget(node, "fps") == (motion.FPS.minimum, motion.FPS.maximum)
    assert widget(pack.MotionTexture, "frames") == (motion.FRAMES.minimum, motion.FRAMES.maximum)
    assert widget(pack.SoftmaxSplatRender, "temperature") == (renderer.TEMPERATURE.minimum, renderer.TEMPERATURE.maximum)


def test_one_memory_refusal_from_the_stage_with_comfyuis_budget(pack, runtime):
    frames = torch.rand(4, H, W, 3, generator=torch.Generator().manual_seed(5))
    runtime.free_bytes = 10 ** 6
    with pytest.raises(engine("memory").RequestTooLarge,
                       match=r"^images: a loop of 100000 frames x 1 repeats at 32x24 needs about .* GB but only "
                             r"0.00 GB are free on cpu; .*Render Loop File"):
        run_node(pack.LoopVideo, images=frames, fps=10.0, frames_per_loop=100000)
    assert runtime.freed  # ComfyUI was asked to unload cached models first


def test_dynamics_widgets_and_checks_share_the_motion_ranges(pack, volume):
    motion = engine("spectral.motion")
    info = pack.InteractiveDynamics.INPUT_TYPES()["required"]
    assert (info["fps"][1]["min"], info["fps"][1]["max"]) == (motion.FPS.minimum, motion.FPS.maximum)
    with pytest.raises(ValueError, match=r"^fps: 500.0 is out of range; allowed: >= 0.1 and <= 240"):
        run_node(pack.InteractiveDynamics, spectral_volume=volume, fps=500.0)
