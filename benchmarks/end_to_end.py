"""End to end in the real host: workflows/animate_still.json on the shipped sample, from queue to files.

    python benchmarks/end_to_end.py [--workflow workflows/animate_still.json] [--runs 2] [--json]

Starts ComfyUI (scripts/comfy_host.py, the pack linked from this checkout), queues the workflow and times,
from the websocket's "executing" events (a node runs from its own event to the next one), how long each
node took, grouped into prediction (loading, prediction, spectrum edits, masks), rendering (motion
texture + Softmax Splat Render + Loop Video) and encoding (the save nodes), plus queue-to-files wall time
(until the output files are downloaded). The first run includes one-off costs (imports, kernel
compilation/cache load); later runs show the steady state. Needs `bash scripts/bootstrap.sh` once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from comfy_host import (ComfyHost, EventListener, default_host_dir, describe_execution_error,  # noqa: E402
                        is_ui_workflow, workflow_to_api)

STAGES = {
    "prediction": ("LoadImage", "GID_LoadGIDModel", "GID_PredictSpectralVolume", "ImageToMask", "ThresholdMask",
                   "GID_EditSpectrum"),
    "rendering": ("GID_MotionTexture", "GID_SoftmaxSplatRender", "GID_LoopVideo"),
    "encoding": ("GID_SaveLoop", "SaveAnimatedWEBP", "CreateVideo", "SaveVideo"),
}


class TimedListener(EventListener):
    """EventListener that also notes when each message arrived."""

    def __init__(self, *args, **kwargs):
        self.arrivals: list[tuple[float, str, dict]] = []
        super().__init__(*args, **kwargs)

    def _deliver(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        self.arrivals.append((time.perf_counter(), str(msg.get("type")), msg.get("data") or {}))
        super()._deliver(raw)


def node_seconds(arrivals, prompt_id: str, finished: float) -> dict[str, float]:
    """Seconds per node id: from its "executing" event to the next node's (or the end of the prompt)."""
    starts = [(t, d.get("node")) for t, kind, d in arrivals if kind == "executing" and d.get("prompt_id") == prompt_id]
    ends = [t for t, kind, d in arrivals if kind == "execution_success" and d.get("prompt_id") == prompt_id]
    marks = starts + [(ends[0] if ends else finished, None)]
    return {str(node): marks[i + 1][0] - t for i, (t, node) in enumerate(marks[:-1]) if node is not None}


def run_once(host: ComfyHost, prompt: dict, extra_data: dict, out_dir: Path) -> dict:
    with TimedListener("127.0.0.1", host.port, uuid.uuid4().hex) as listener:
        queued = time.perf_counter()
        prompt_id = host.queue(prompt, client_id=listener.client_id, extra_data=extra_data)
        entry = host.wait(prompt_id, timeout=900, poll=0.05)
        files = [f for f in host.output_files(entry) if f["type"] == "output"]
        sizes = {}
        for info in files:
            data = host.download(info)
            (out_dir / info["filename"]).write_bytes(data)
            sizes[info["filename"]] = len(data)
        done = time.perf_counter()
        listener.wait_finished(prompt_id, timeout=10)
        status = (entry.get("status") or {}).get("status_str")
        if status != "success":
            print(describe_execution_error(entry), file=sys.stderr)
        per_node = node_seconds(listener.arrivals, prompt_id, done)
    by_class = {}
    for node_id, seconds in per_node.items():
        kind = prompt[node_id]["class_type"]
        by_class[kind] = by_class.get(kind, 0.0) + seconds
    stages = {stage: round(sum(by_class.get(k, 0.0) for k in kinds), 3) for stage, kinds in STAGES.items()}
    return {"status": status, "queue_to_files_s": round(done - queued, 3), "stages_s": stages,
            "nodes_s": {k: round(v, 3) for k, v in sorted(by_class.items(), key=lambda kv: -kv[1])}, "files": sizes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflow", default=str(ROOT / "workflows" / "animate_still.json"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    workflow = json.loads(Path(args.workflow).read_text(encoding="utf-8"))
    host_dir = default_host_dir()
    with tempfile.TemporaryDirectory(prefix="gid-e2e-") as tmp:
        host = ComfyHost(host_dir, ROOT, Path(tmp) / "host", env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
        try:
            host.start(timeout=300)
            print(f"ComfyUI up after {host.startup_seconds:.1f} s", flush=True)
            if is_ui_workflow(workflow):
                prompt, extra = workflow_to_api(workflow, host.object_info()), {"extra_pnginfo": {"workflow": workflow}}
            else:
                prompt, extra = workflow, {}
            runs = []
            for i in range(args.runs):
                if i:  # same prompt again would be served from ComfyUI's cache: change the output prefix
                    for node in prompt.values():
                        if "filename_prefix" in node["inputs"]:
                            node["inputs"]["filename_prefix"] = f"{node['inputs']['filename_prefix']}_{i}"
                        if node["class_type"] == "GID_PredictSpectralVolume":
                            node["inputs"]["seed"] = i  # and recompute everything, not just the savers
                row = run_once(host, prompt, extra, Path(tmp))
                runs.append(row)
                print(f"run {i + 1}: {row['status']}, queue to files {row['queue_to_files_s']:.2f} s; "
                      + ", ".join(f"{k} {v:.2f} s" for k, v in row["stages_s"].items())
                      + "; nodes: " + ", ".join(f"{k} {v:.2f}" for k, v in row["nodes_s"].items()), flush=True)
        finally:
            host.stop()
    if args.json:
        print(json.dumps({"workflow": Path(args.workflow).name, "startup_s": host.startup_seconds, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
