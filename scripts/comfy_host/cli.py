"""Command line: run a UI- or API-format workflow on a fresh ComfyUI host and keep what it saved.

    python scripts/comfy_host run-workflow WORKFLOW.json --pack PATH --out DIR
        [--input-image PATH] [--set NODE_ID.input=value ...] [--timeout S] [--work-dir DIR] [--host-dir DIR]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import HostStartError, PromptFailed, PromptRejected, PromptTimeout, WorkflowConversionError
from .server import DEFAULT_PACK_NAME, REPO_ROOT, ComfyHost, default_host_dir
from .workflow import is_ui_workflow, workflow_to_api, wrap_literal

# Exit codes, one per kind of failure, so that scripts can tell a bad workflow from a broken host.
EXIT_PROMPT_FAILED = 1
EXIT_BAD_PROMPT = 2
EXIT_HOST_FAILED = 3


def parse_assignment(text: str) -> tuple[str, str, Any]:
    """'12.seed=5' -> ('12', 'seed', 5); values are JSON when they parse as JSON, else plain strings."""
    target, sep, raw = text.partition("=")
    node_id, dot, name = target.partition(".")
    if not sep or not dot or not node_id or not name:
        raise ValueError(f"expected NODE_ID.input=value, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return node_id.strip(), name.strip(), value


def apply_assignments(prompt: dict[str, dict[str, Any]], assignments: Iterable[str]) -> None:
    for text in assignments:
        node_id, name, value = parse_assignment(text)
        if node_id not in prompt:
            raise KeyError(f"--set {text!r}: no node {node_id} in the prompt (nodes: {', '.join(sorted(prompt))})")
        prompt[node_id]["inputs"][name] = wrap_literal(value)


def point_load_images(prompt: Mapping[str, dict[str, Any]], image_name: str) -> list[str]:
    """Make every LoadImage node read image_name from the input folder; returns their ids."""
    changed = []
    for node_id, node in prompt.items():
        if node.get("class_type") == "LoadImage":
            node["inputs"]["image"] = image_name
            changed.append(node_id)
    return changed


def run_workflow(
    host: ComfyHost,
    workflow: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    input_image: str | os.PathLike[str] | None = None,
    assignments: Iterable[str] = (),
    timeout: float = 600,
) -> list[Path]:
    """Run a workflow on a started host and write the files it saved under out_dir (their subfolders kept)."""
    if is_ui_workflow(workflow):
        prompt = workflow_to_api(workflow, host.object_info())
        extra_data: dict[str, Any] | None = {"extra_pnginfo": {"workflow": workflow}}
    else:
        prompt, extra_data = copy.deepcopy(dict(workflow)), None
    if input_image:
        name = host.add_input_file(input_image)
        if not point_load_images(prompt, name):
            print("[comfy_host] warning: --input-image given but the workflow has no LoadImage node", file=sys.stderr)
    apply_assignments(prompt, assignments)
    entry = host.run(prompt, timeout=timeout, extra_data=extra_data)
    # Saved results only: nodes' temp previews (loop previews, motion overlays) stay on the server.
    files = [f for f in host.output_files(entry) if f["type"] == "output"]
    if not files:
        print("[comfy_host] warning: the prompt succeeded but reported no output files", file=sys.stderr)
    written = []
    for info in files:
        target = Path(out_dir) / info["subfolder"] / info["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(host.download(info))
        written.append(target)
    return written


def _run_workflow(args: argparse.Namespace) -> int:
    workflow = json.loads(Path(args.workflow).read_text(encoding="utf-8"))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.work_dir:
        work_dir = Path(args.work_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="comfy-host-")
        work_dir = Path(tmp.name)
    host = ComfyHost(args.host_dir or default_host_dir(), args.pack, work_dir, port=args.port, pack_name=args.pack_name)
    try:
        host.start(timeout=args.start_timeout)
        print(f"[comfy_host] ComfyUI up on {host.base_url} after {host.startup_seconds:.1f}s", file=sys.stderr)
        for path in run_workflow(host, workflow, args.out, input_image=args.input_image, assignments=args.set or [],
                                 timeout=args.timeout):
            print(path)
        return 0
    except (PromptRejected, PromptFailed, PromptTimeout) as e:
        print(f"[comfy_host] {e}", file=sys.stderr)
        return EXIT_PROMPT_FAILED
    except (WorkflowConversionError, KeyError, ValueError) as e:
        print(f"[comfy_host] cannot build the prompt: {e}", file=sys.stderr)
        return EXIT_BAD_PROMPT
    except HostStartError as e:
        print(f"[comfy_host] {e}", file=sys.stderr)
        return EXIT_HOST_FAILED
    finally:
        host.stop()
        if tmp is not None:
            tmp.cleanup()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comfy_host", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run-workflow", help="run a UI- or API-format workflow on a fresh ComfyUI host")
    run.add_argument("workflow", help="workflow JSON (UI 'save' format or API format)")
    run.add_argument("--pack", default=str(REPO_ROOT), help="custom-node pack folder to load (default: this repo)")
    run.add_argument("--pack-name", default=DEFAULT_PACK_NAME, help="folder name the pack is linked under")
    run.add_argument("--out", required=True, help="folder that receives every output file")
    run.add_argument("--input-image", help="image copied into the input folder and set on every LoadImage node")
    run.add_argument("--set", action="append", metavar="NODE_ID.input=value",
                     help="override an input after conversion (value parsed as JSON when possible); repeatable")
    run.add_argument("--timeout", type=float, default=600, help="seconds to wait for the prompt (default 600)")
    run.add_argument("--start-timeout", type=float, default=180, help="seconds to wait for the server to answer")
    run.add_argument("--work-dir", help="server work folder (default: a temporary folder, removed afterwards)")
    run.add_argument("--host-dir", help="unpacked ComfyUI tree (default: $GID_COMFYUI_DIR or .comfyui)")
    run.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Turn SIGTERM into SystemExit so the finally blocks stop the server we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if args.command == "run-workflow":
        return _run_workflow(args)
    return EXIT_BAD_PROMPT
