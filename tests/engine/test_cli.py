import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gid_engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def small_sample(tmp_path):
    path = tmp_path / "small.png"
    Image.open(ROOT / "samples" / "dandelion.jpg").resize((96, 54)).save(path)
    return path


def test_animate_writes_a_looping_webp_and_mp4(tmp_path):
    picture = small_sample(tmp_path)
    out = tmp_path / "loop.webp"
    result = run_cli("animate", str(picture), "-o", str(out), "--frames", "24", "--fps", "12", "--seed", "5",
                     "--start-on-picture")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and out.exists()
    with Image.open(out) as im:
        assert im.n_frames == 24 and im.size == (96, 54)
        im.seek(0)
        first = np.asarray(im.convert("RGB"), dtype=np.float32)
    original = np.asarray(Image.open(picture).convert("RGB"), dtype=np.float32)
    assert np.abs(first - original).mean() < 4  # starts on the picture (lossy WebP)
    mp4 = tmp_path / "loop.mp4"
    result = run_cli("animate", str(picture), "-o", str(mp4), "--frames", "12")
    assert result.returncode == 0, result.stderr
    import cv2
    cap = cv2.VideoCapture(str(mp4))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_mask_freezes_the_masked_out_part(tmp_path):
    picture = small_sample(tmp_path)
    mask = np.zeros((54, 96), dtype=np.uint8)
    mask[:, 48:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "masked.webp"
    result = run_cli("animate", str(picture), "-o", str(out), "--frames", "8", "--mask", str(tmp_path / "mask.png"),
                     "--intensity", "4")
    assert result.returncode == 0, result.stderr
    with Image.open(out) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    still = np.stack(frames)[:, :, :32]  # well away from the mask edge, where moving pixels may land
    moving = np.stack(frames)[:, :, 56:]
    still_change = np.abs(still - still[0]).mean()
    assert still_change < 1.0  # lossy WebP noise only
    assert np.abs(moving - moving[0]).mean() > 3 * still_change


def test_bad_arguments_are_reported(tmp_path):
    picture = small_sample(tmp_path)
    result = run_cli("animate", str(picture), "-o", str(tmp_path / "x.webp"), "--frames", "0")
    assert result.returncode != 0 and "--frames must be positive" in result.stderr
    result = run_cli("animate", str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.webp"))
    assert result.returncode != 0 and "picture not found" in result.stderr
    result = run_cli("animate", str(picture), "-o", str(tmp_path / "x.avi"), "--frames", "4")
    assert result.returncode != 0 and "unsupported animation format" in result.stderr


def webp_frames(path):
    with Image.open(path) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    return np.stack(frames)


def test_motion_writes_a_volume_that_load_and_animate_replay(tmp_path):
    from gid_engine.spectral.volume import SpectralVolume

    volume_path = tmp_path / "sway.safetensors"
    result = run_cli("motion", str(ROOT / "samples" / "dandelion_sway.mp4"), "-o", str(volume_path), "--max-size",
                     "96", "--max-frames", "40", "--num-bins", "8")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "8 bins on a 96x54 grid" in result.stdout
    volume = SpectralVolume.load(volume_path)  # what Load Spectral Volume reads
    assert volume.num_bins == 8 and (volume.width, volume.height) == (96, 54) and volume.fps == 24.0
    assert float(volume.band_amplitude()[0, 1:].max()) > 0.05  # the clip's sway was measured

    picture = small_sample(tmp_path)
    replay = tmp_path / "replay.webp"
    result = run_cli("animate", str(picture), "-o", str(replay), "--volume", str(volume_path), "--frames", "8",
                     "--quality", "100", "--temperature", "2")
    assert result.returncode == 0, result.stderr
    moving = webp_frames(replay)
    assert np.abs(moving - moving[0]).mean(axis=(1, 2, 3)).max() > 0.5

    still = tmp_path / "still.safetensors"
    SpectralVolume(volume.coeffs * 0, fps=volume.fps, period=volume.period).save(still)
    frozen = tmp_path / "frozen.webp"
    result = run_cli("animate", str(picture), "-o", str(frozen), "--volume", str(still), "--frames", "4",
                     "--quality", "100")
    assert result.returncode == 0, result.stderr
    original = np.asarray(Image.open(picture).convert("RGB"), dtype=np.int16)
    assert np.abs(webp_frames(frozen) - original).max() == 0  # the file's motion (none), not the prior's


def test_animate_preset_changes_the_motion(tmp_path):
    picture = small_sample(tmp_path)
    loops = {}
    for preset in ("auto", "clouds drift"):
        out = tmp_path / f"{preset.replace(' ', '_')}.webp"
        result = run_cli("animate", str(picture), "-o", str(out), "--frames", "4", "--preset", preset,
                         "--quality", "100")
        assert result.returncode == 0, result.stderr
        loops[preset] = webp_frames(out)
    assert np.abs(loops["auto"] - loops["clouds drift"]).mean() > 0.1


def test_new_flags_refuse_bad_values_by_name(tmp_path, capsys):
    from gid_engine.__main__ import main
    from gid_engine.spectral.volume import SpectralVolume

    picture = small_sample(tmp_path)
    out = str(tmp_path / "x.webp")
    volume = str(tmp_path / "v.safetensors")
    volume_z = str(tmp_path / "zero.safetensors")
    clip = str(ROOT / "samples" / "dandelion_sway.mp4")
    cases = [
        (("animate", str(picture), "-o", out, "--temperature", "-1"), "--temperature: -1.0 is out of range"),
        (("animate", str(picture), "-o", out, "--temperature", "nan"), "--temperature: expected a finite number"),
        (("animate", str(picture), "-o", out, "--preset", "storm"), "argument --preset: invalid choice: 'storm'"),
        (("animate", str(picture), "-o", out, "--volume", volume), "--volume: no such file"),
        (("poke", str(picture), "-o", out, "--at", "0.5,0.5", "--pull", "3,0", "--quality", "101"),
         "--quality: 101 is out of range"),
        (("motion", clip, "-o", volume, "--num-bins", "99"), "--num-bins: 99 is out of range"),
        (("motion", clip, "-o", volume, "--max-size", "-1"), "--max-size: -1 is out of range"),
        (("motion", clip, "-o", volume, "--period", "-3"), "--period: -3 is out of range"),
        (("motion", clip, "-o", volume, "--resample-fps", "-2"), "--resample-fps: -2.0 is out of range"),
        (("motion", clip, "-o", volume, "--reference-frame", "-5"), "--reference-frame: -5 is out of range"),
        (("motion", clip, "-o", volume, "--fps", "0"), "--fps: 0.0 is out of range"),
        (("motion", clip, "-o", volume, "--max-frames", "1"), "--max-frames: 1 frame shows no motion"),
        (("motion", clip, "-o", volume, "--camera-motion", "tripod"), "argument --camera-motion: invalid choice"),
        (("motion", clip, "-o", str(tmp_path / "m.png")), "--output: "),
        (("motion", str(tmp_path / "none.mp4"), "-o", volume), "video not found"),
    ]
    # a clip too short for the bins asked, and a reference past its end: the node's checks, named by flag
    cases += [
        (("motion", clip, "-o", volume, "--max-frames", "10", "--num-bins", "16", "--max-size", "64",
          "--reference-frame", "0"), "--num-bins: 16 bins need more than 30 frames"),
        (("motion", clip, "-o", volume, "--max-frames", "10", "--reference-frame", "20", "--max-size", "64"),
         "--reference-frame: must be -1 (auto) or a frame index below 9"),
        # a saved volume has its own motion: a preset is refused as the node refuses it
        (("animate", str(picture), "-o", out, "--volume", volume_z, "--preset", "foliage"),
         "--preset: 'foliage' only applies to the built-in procedural prior"),
    ]
    SpectralVolume(torch.zeros(1, 4, 2, 6, 8, dtype=torch.complex64), fps=30.0, period=30).save(volume_z)
    for args, message in cases:  # in this process: the same parser and checks, without a start-up per case
        try:
            code = main(list(args))
        except SystemExit as stop:
            code = stop.code
        stderr = capsys.readouterr().err
        assert code != 0 and message in stderr, (args, stderr[-500:])
