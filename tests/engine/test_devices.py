"""--device: one checked option shared by the CLIs."""
import pytest
import torch
from PIL import Image

from gid_engine import devices
from gid_engine.__main__ import main as gid_main
from gid_engine.training.train import main as train_main


def test_auto_and_cpu_resolve():
    assert devices.resolve("auto") == devices.default_device()
    assert devices.resolve("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_a_missing_gpu_is_an_error_not_a_silent_cpu_run():
    with pytest.raises(ValueError, match=r"device: 'cuda:1' asked for a CUDA GPU but .*use --device cpu"):
        devices.resolve("cuda:1")


def test_a_name_that_is_no_device_is_refused():
    with pytest.raises(ValueError, match=r"device: 'gpu0' is not a device; expected auto, cpu, cuda"):
        devices.resolve("gpu0")
    with pytest.raises(ValueError, match=r"'meta' is not supported"):
        devices.resolve("meta")


@pytest.mark.parametrize("argv", [["animate", "pic.png", "-o", "out.webp"], ["poke", "pic.png", "-o", "out.webp",
                                                                            "--at", "0.5,0.5", "--pull", "3,0"]])
def test_the_clis_check_device_when_parsing(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        gid_main([*argv, "--device", "gpu0"])
    assert exited.value.code == 2
    assert "--device: 'gpu0' is not a device" in capsys.readouterr().err


def test_train_checks_device_when_parsing(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["--config", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "gpu0"])
    assert "--device: 'gpu0' is not a device" in capsys.readouterr().err


def test_animate_runs_on_the_device_asked_for(tmp_path):
    picture = tmp_path / "p.png"
    Image.new("RGB", (24, 16), (90, 140, 60)).save(picture)
    out = tmp_path / "loop.webp"
    assert gid_main(["animate", str(picture), "-o", str(out), "--frames", "4", "--device", "cpu"]) == 0
    assert out.stat().st_size > 0
