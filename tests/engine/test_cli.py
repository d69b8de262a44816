import subprocess
import sys
from pathlib import Path

import numpy as np
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
