"""Shared fixtures. The engine is importable from the repo root; host and browser tests share ONE real ComfyUI
0.3.75 server (session-scoped) with this repo linked in as a custom-node pack."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from comfy_host import DEFAULT_PACK_NAME, ComfyHost, find_tracebacks  # noqa: E402

PROBE_NODES = Path(__file__).resolve().parent / "host" / "probe_nodes" / "gid_harness_probe.py"
_started: list[ComfyHost] = []


def comfyui_dir() -> Path:
    return Path(os.environ.get("GID_COMFYUI_DIR", REPO_ROOT / ".comfyui"))


def pack_markers(host: ComfyHost) -> list[str]:
    """Strings that only a traceback through our pack's code contains (core paths share the repo prefix)."""
    return [
        host.pack_name,
        "gid_engine",
        f"{os.sep}{host.pack_name}{os.sep}nodes{os.sep}",
        str(REPO_ROOT / "nodes") + os.sep,
        str(REPO_ROOT / "__init__.py"),
    ]


@pytest.fixture(scope="session")
def comfy_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyHost]:
    host_dir = comfyui_dir()
    if not (host_dir / "main.py").is_file():
        pytest.fail(
            f"no ComfyUI tree at {host_dir} (main.py missing); run `bash scripts/bootstrap.sh` first "
            "(or point GID_COMFYUI_DIR at an unpacked ComfyUI 0.3.75)",
            pytrace=False,
        )
    work_dir = tmp_path_factory.mktemp("comfyui-host")
    host = ComfyHost(
        host_dir,
        REPO_ROOT,
        work_dir,
        # a user's own models/gid location, which the pack must keep when it registers its default folder
        model_paths={"gid": work_dir / "user_models" / "gid"},
        pack_name=DEFAULT_PACK_NAME,
        extra_custom_nodes=[PROBE_NODES],
    )
    host.start(timeout=float(os.environ.get("GID_HOST_START_TIMEOUT", "180")))
    host.startup_log_end = host.log_size()  # where loading ends and prompts (some deliberately bad) begin
    _started.append(host)
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def assert_no_pack_tracebacks(comfy_host: ComfyHost) -> Callable[..., None]:
    """Call it with since=host.log_size() taken earlier to fail on any traceback through the pack since then;
    with no argument it checks the server's start-up (loading the pack), before any prompt ran."""

    def check(since: int | None = None) -> None:
        if since is None:
            with open(comfy_host.log_path, "rb") as f:
                log = f.read(comfy_host.startup_log_end).decode("utf-8", errors="replace")
            hits = [t for t in find_tracebacks(log) if any(m in t for m in pack_markers(comfy_host))]
        else:
            log = comfy_host.log_text(since)
            hits = comfy_host.tracebacks(pack_markers(comfy_host), since=since)
        import_failed = [
            line for line in log.splitlines()
            if ("IMPORT FAILED" in line or "Cannot import" in line) and comfy_host.pack_name in line
        ]
        if hits or import_failed:
            details = "\n\n".join(hits + import_failed)
            pytest.fail(f"server log ({comfy_host.log_path}) shows the pack failing:\n{details}", pytrace=False)

    return check


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for host in _started:
        if host.startup_seconds is not None:
            terminalreporter.write_line(f"ComfyUI host start-up: {host.startup_seconds:.1f}s (log: {host.log_path})")


LEARNED_CHECKPOINT = "gid_motion.safetensors"  # the name workflows/animate_still_learned.json asks for


@pytest.fixture(scope="session")
def tiny_checkpoint(comfy_host: ComfyHost, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train the tiny config for one step per phase with the CLI, then install it as a user's models/gid file."""
    from benchmarks.learned_model import build_dataset

    work = tmp_path_factory.mktemp("learned")
    data = build_dataset(work / "data", 3)
    result = subprocess.run([sys.executable, "-m", "gid_engine.train", "--config", "tiny", "--data", str(data),
                             "--out", str(work / "run"), "--vae-steps", "1", "--stage1-steps", "1",
                             "--stage2-steps", "1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    target = comfy_host.model_paths["gid"] / LEARNED_CHECKPOINT
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "run" / LEARNED_CHECKPOINT, target)
    return target
