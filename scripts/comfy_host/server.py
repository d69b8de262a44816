"""One ComfyUI server process with our pack linked in, and the HTTP calls a client makes to it.

Deliberately free of ComfyUI imports: the server runs in its own process from an unpacked ComfyUI tree (see
scripts/install_host.py), and everything here talks to it over HTTP, exactly as the browser frontend does.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from .errors import ComfyHostError, HostStartError, PromptFailed, PromptRejected, PromptTimeout, find_tracebacks
from .events import EventListener

DEFAULT_PACK_NAME = "comfyui-gid"
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_host_dir() -> Path:
    return Path(os.environ.get("GID_COMFYUI_DIR", REPO_ROOT / ".comfyui"))


class OutputFile(TypedDict):
    filename: str
    subfolder: str
    type: str
    node_id: str


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel SIGTERM the server when the process that started it dies (a killed pytest or
    CI job would otherwise leave it running, since it sits in its own session). The kernel ties this to the
    starting thread, so start a host from a thread that outlives it (normally the main thread)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: nothing to import in the child
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def arm() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return arm


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ComfyHost:
    """One ComfyUI server process with one pack linked in through an extra_model_paths YAML.

    Everything the server writes (input/, output/, temp/, user/, its sqlite database, the log) lands under
    work_dir, so the unpacked ComfyUI tree stays untouched.
    """

    def __init__(
        self,
        host_dir: str | os.PathLike[str],
        pack_dir: str | os.PathLike[str],
        work_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        pack_name: str = DEFAULT_PACK_NAME,
        extra_custom_nodes: Iterable[str | os.PathLike[str]] = (),
        extra_args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        model_paths: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        self.host_dir = Path(host_dir).resolve()
        self.pack_dir = Path(pack_dir).resolve()
        self.work_dir = Path(work_dir).resolve()
        self.pack_name = pack_name
        self.extra_custom_nodes = [Path(p).resolve() for p in extra_custom_nodes]
        self.requested_port = port
        self.port: int | None = port
        self.extra_args = list(extra_args)
        self.env = dict(env) if env is not None else None
        self.python = python
        # Extra model folders, as a user's extra_model_paths.yaml would give them (folder name -> path).
        self.model_paths = {name: Path(path).resolve() for name, path in (model_paths or {}).items()}
        self.custom_nodes_dir = self.work_dir / "custom_nodes"
        self.input_dir = self.work_dir / "input"
        self.output_dir = self.work_dir / "output"
        # ComfyUI appends "temp" to --temp-directory and wipes that folder at start and exit.
        self.temp_dir = self.work_dir / "temp"
        self.user_dir = self.work_dir / "user"
        self.config_path = self.work_dir / "extra_model_paths.yaml"
        self.log_path = self.work_dir / "comfyui.log"
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._object_info: dict[str, Any] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ComfyHostError("host has no port yet; call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def prepare(self) -> None:
        """Create the work-dir layout; start() calls this, it is public for callers that stage inputs first."""
        main_py = self.host_dir / "main.py"
        if not main_py.is_file():
            raise HostStartError(f"{main_py} not found; run `bash scripts/bootstrap.sh` to unpack ComfyUI")
        if not self.pack_dir.is_dir():
            raise HostStartError(f"pack folder {self.pack_dir} does not exist")
        for folder in (self.custom_nodes_dir, self.input_dir, self.output_dir, self.user_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._link(self.custom_nodes_dir / self.pack_name, self.pack_dir)
        for extra in self.extra_custom_nodes:
            if not extra.exists():
                raise HostStartError(f"extra custom node {extra} does not exist")
            self._link(self.custom_nodes_dir / extra.name, extra)
        # JSON is valid YAML and spares us quoting rules for odd paths.
        lines = ["gidtest:", "    custom_nodes: " + json.dumps(str(self.custom_nodes_dir))]
        for name, path in self.model_paths.items():
            path.mkdir(parents=True, exist_ok=True)
            lines.append(f"    {name}: " + json.dumps(str(path)))
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @staticmethod
    def _link(link: Path, target: Path) -> None:
        if link.is_symlink() or link.exists():
            if not link.is_symlink() or link.resolve() != target:
                raise HostStartError(f"{link} exists and is not a link to {target}")
            return
        link.symlink_to(target, target_is_directory=target.is_dir())

    def command(self) -> list[str]:
        assert self.port is not None
        return [
            self.python, "main.py",
            "--cpu",
            "--listen", "127.0.0.1",
            "--port", str(self.port),
            "--extra-model-paths-config", str(self.config_path),
            "--input-directory", str(self.input_dir),
            "--output-directory", str(self.output_dir),
            "--temp-directory", str(self.work_dir),
            "--user-directory", str(self.user_dir),
            # The default database lives inside the ComfyUI tree (user/comfyui.db).
            "--database-url", f"sqlite:///{self.user_dir / 'comfyui.db'}",
            "--disable-auto-launch",
            *self.extra_args,
        ]

    def start(self, timeout: float = 180) -> ComfyHost:
        if self.is_running():
            return self
        self.prepare()
        began = time.monotonic()
        attempts = 1 if self.requested_port is not None else 3
        for attempt in range(attempts):
            self.port = self.requested_port or free_port()
            self._spawn()
            try:
                self._wait_ready(began + timeout)
                break
            except HostStartError:
                port_taken = "address already in use" in self.log_text().lower()
                self.stop()
                if not port_taken or attempt == attempts - 1:
                    raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _spawn(self) -> None:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            self.command(),
            cwd=self.host_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group, so stop() can end the server and only it
            preexec_fn=_die_with_parent(),
        )

    def _wait_ready(self, deadline: float) -> None:
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise HostStartError(f"ComfyUI exited with code {code} during start-up\n{self.log_tail()}")
            try:
                self._request("GET", "/system_stats", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, OSError, ComfyHostError):
                pass
            if time.monotonic() > deadline:
                raise HostStartError(f"ComfyUI did not answer on {self.base_url} in time\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self, timeout: float = 20) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            pgid = proc.pid  # start_new_session made the server its own group leader
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._object_info = None

    def __enter__(self) -> ComfyHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        # Last resort against orphaned servers when a caller forgets stop(); never raises.
        try:
            if self._proc is not None and self._proc.poll() is None:
                self.stop(timeout=5)
        except Exception:
            pass

    # -- log -------------------------------------------------------------------------------------

    def log_size(self) -> int:
        """A mark for log_text(since=...), to look only at what a test itself caused."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tracebacks(self, markers: Iterable[str] = (), since: int = 0) -> list[str]:
        """Tracebacks in the server log (from `since` on); with markers, only those mentioning one of them."""
        found = find_tracebacks(self.log_text(since))
        wanted = [m for m in markers if m]
        return [tb for tb in found if not wanted or any(m in tb for m in wanted)]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: Any = None, timeout: float = 60, query: Mapping[str, str] | None = None
    ) -> bytes:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers: dict[str, str] = {}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload: bytes = resp.read()
            return payload

    def _get_json(self, path: str, timeout: float = 60, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        answer = json.loads(self._request("GET", path, timeout=timeout, query=query))
        if not isinstance(answer, dict):
            raise ComfyHostError(f"GET {path} answered {type(answer).__name__}, expected a JSON object")
        return answer

    def system_stats(self) -> dict[str, Any]:
        return self._get_json("/system_stats")

    def object_info(self, refresh: bool = False) -> dict[str, Any]:
        if self._object_info is None or refresh:
            self._object_info = self._get_json("/object_info", timeout=120)
        return self._object_info

    def queue(
        self, prompt: Mapping[str, Any], client_id: str | None = None, extra_data: Mapping[str, Any] | None = None
    ) -> str:
        """POST /prompt; returns the prompt id or raises PromptRejected with the server's own error JSON."""
        body: dict[str, Any] = {"prompt": prompt}
        if client_id is not None:
            body["client_id"] = client_id
        if extra_data is not None:
            body["extra_data"] = dict(extra_data)
        try:
            answer = json.loads(self._request("POST", "/prompt", body=body))
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                raise ComfyHostError(f"POST /prompt answered HTTP {e.code}: {raw[:2000]!r}") from None
            raise PromptRejected(payload.get("error"), payload.get("node_errors") or {}, e.code) from None
        return str(answer["prompt_id"])

    def history(self, prompt_id: str | None = None) -> dict[str, Any]:
        return self._get_json(f"/history/{urllib.parse.quote(prompt_id)}" if prompt_id else "/history")

    def wait(self, prompt_id: str, timeout: float = 300, poll: float = 0.2) -> dict[str, Any]:
        """Poll /history until the prompt has finished (either way) and return its history entry."""
        deadline = time.monotonic() + timeout
        while True:
            entry: dict[str, Any] | None = self.history(prompt_id).get(prompt_id)
            if entry is not None:
                status = entry.get("status") or {}
                if status.get("completed") or status.get("status_str") in ("success", "error"):
                    return entry
            if not self.is_running():
                raise ComfyHostError(f"ComfyUI exited while prompt {prompt_id} ran\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise PromptTimeout(f"prompt {prompt_id} not finished after {timeout:.0f}s\n{self.log_tail(20)}")
            time.sleep(poll)

    def run(
        self,
        prompt: Mapping[str, Any],
        timeout: float = 300,
        *,
        client_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        check: bool = True,
    ) -> dict[str, Any]:
        """Queue and wait; with check=True an execution error raises PromptFailed."""
        prompt_id = self.queue(prompt, client_id=client_id, extra_data=extra_data)
        entry = self.wait(prompt_id, timeout=timeout)
        if check and (entry.get("status") or {}).get("status_str") != "success":
            raise PromptFailed(prompt_id, entry)
        return entry

    @staticmethod
    def output_files(entry: Mapping[str, Any]) -> list[OutputFile]:
        """Every file that any node reported in its UI output (images, gifs, videos, audio, 3d, ...)."""
        found: list[OutputFile] = []
        for node_id, ui in (entry.get("outputs") or {}).items():
            for items in ui.values():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, dict) and isinstance(item.get("filename"), str):
                        found.append(
                            OutputFile(
                                filename=item["filename"],
                                subfolder=item.get("subfolder") or "",
                                type=item.get("type") or "output",
                                node_id=str(node_id),
                            )
                        )
        return found

    def download(self, file_info: Mapping[str, Any]) -> bytes:
        query = {
            "filename": str(file_info["filename"]),
            "subfolder": str(file_info.get("subfolder") or ""),
            "type": str(file_info.get("type") or "output"),
        }
        return self._request("GET", "/view", query=query, timeout=120)

    def interrupt(self, prompt_id: str | None = None) -> None:
        self._request("POST", "/interrupt", body={"prompt_id": prompt_id} if prompt_id else {})

    def queue_state(self) -> dict[str, Any]:
        return self._get_json("/queue")

    def clear_queue(self) -> None:
        self._request("POST", "/queue", body={"clear": True})

    def free(self, unload_models: bool = True, free_memory: bool = True) -> None:
        self._request("POST", "/free", body={"unload_models": unload_models, "free_memory": free_memory})

    def add_input_file(self, source: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy a file into the server's input folder; returns the name a LoadImage-style widget takes."""
        src = Path(source)
        target = self.input_dir / (name or src.name)
        self.input_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        return target.name

    def listen(self, client_id: str | None = None, timeout: float = 10) -> EventListener:
        """Open /ws for client_id; pass listener.client_id to queue()/run() to receive that prompt's events."""
        return EventListener("127.0.0.1", self.port or 0, client_id or uuid.uuid4().hex, timeout=timeout)

    def run_with_progress(self, prompt: Mapping[str, Any], node: str, timeout: float = 300
                          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """run() while listening: the history entry and the progress messages node `node` sent on the way."""
        with self.listen() as events:
            entry = self.run(prompt, timeout=timeout, client_id=events.client_id)
            prompt_id = entry["prompt"][1]
            events.wait_for(lambda kind, data: kind == "execution_success" and data.get("prompt_id") == prompt_id,
                            timeout=30)
            return entry, events.progress_events(prompt_id, node)
