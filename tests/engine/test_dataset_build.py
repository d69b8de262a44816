"""python -m gid_engine.data with --workers: sharded output, same samples whatever the workers, resumable."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from benchmarks.dataset_build import write_clips
from gid_engine.training.data import DONE_FILE, main
from gid_engine.training.dataset import PairDataset

ARGS = ["--size", "64x48", "--fps", "24", "--period", "24", "--stride", "12", "--bins", "8", "--max-camera-px",
        "1000", "--min-reliable", "0", "--frames-per-pair", "3"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips") / "videos"
    write_clips(folder, 3)
    (folder / "broken.mp4").write_bytes(b"not a video")
    return folder


def pairs(root):
    data = PairDataset(root)
    return data, [data.pair(i) for i in range(len(data))]


def test_parallel_build_is_sharded_and_equals_the_serial_build(videos, tmp_path, capsys) -> None:
    assert main([str(videos), str(tmp_path / "one"), *ARGS]) == 0
    assert main([str(videos), str(tmp_path / "two"), *ARGS, "--workers", "2"]) == 0
    one, one_pairs = pairs(tmp_path / "one")
    two, two_pairs = pairs(tmp_path / "two")
    assert len(one) == 9  # 3 clips x 3 windows of 24 frames every 12 of 48
    assert one.manifest["samples"] == two.manifest["samples"] and one.manifest["dropped"] == two.manifest["dropped"]
    assert [d["source"] for d in one.manifest["dropped"]] == ["broken.mp4"]
    for a, b in zip(one_pairs, two_pairs):
        assert torch.equal(a.image, b.image) and torch.equal(a.volume.coeffs, b.volume.coeffs)
        assert torch.equal(a.frames, b.frames) and a.frames.shape == (3, 3, 48, 64)
    # Shards: pairs/<2 hex>/<clip>-<hash>/NNNN.safetensors, one folder per clip, nothing at the top level.
    files = [s["file"] for s in one.manifest["samples"]]
    assert all(f.startswith("pairs/") and len(f.split("/")) == 4 for f in files)
    assert len({f.rsplit("/", 1)[0] for f in files}) == 3
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["manifest.json", "pairs"]
    assert one_pairs[0].frame_times.tolist() == [4.0, 8.0, 12.0]


def test_interrupted_build_resumes_and_skips_done_clips(videos, tmp_path, capsys) -> None:
    out = tmp_path / "data"
    assert main([str(videos), str(out), *ARGS]) == 0
    reference = json.loads((out / "manifest.json").read_text())
    # Interrupt: one clip never finished (no clip.json, a stray file), the manifest not written yet.
    clip_folder = (out / reference["samples"][-1]["file"]).parent
    (clip_folder / DONE_FILE).unlink()
    (out / "manifest.json").unlink()
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.safetensors") if p.parent != clip_folder}
    capsys.readouterr()
    assert main([str(videos), str(out), *ARGS, "--workers", "2"]) == 0
    assert "3 clips already done, 1 to go" in capsys.readouterr().out  # broken.mp4 is done too (dropped)
    assert json.loads((out / "manifest.json").read_text()) == reference
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # done clips were not redone
    shutil.rmtree(clip_folder)


def test_bad_workers_value(videos, tmp_path) -> None:
    with pytest.raises(SystemExit):
        main([str(videos), str(tmp_path / "x"), "--workers", "0"])
