"""Drive a real ComfyUI server as a black box: start it with our pack loaded, queue prompts, collect outputs.

Used by the host tests (tests/host/) and by demos. Deliberately free of ComfyUI imports: the server runs in
its own process from an unpacked ComfyUI tree (see scripts/install_host.py), and everything here talks to it
over HTTP and a websocket, exactly as the browser frontend does.

CLI:
    python scripts/comfy_host.py run-workflow WORKFLOW.json --pack PATH --out DIR
        [--input-image PATH] [--set NODE_ID.input=value ...] [--timeout S] [--work-dir DIR] [--host-dir DIR]
"""
from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

DEFAULT_PACK_NAME = "comfyui-gid"
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_host_dir() -> Path:
    return Path(os.environ.get("GID_COMFYUI_DIR", REPO_ROOT / ".comfyui"))


# --------------------------------------------------------------------------------------------------
# Errors


class ComfyHostError(RuntimeError):
    """Base class for everything this module raises about the server."""


class HostStartError(ComfyHostError):
    """The server process died or never answered; the message carries the tail of its log."""


class PromptRejected(ComfyHostError):
    """POST /prompt answered 400: validation failed before anything ran."""

    def __init__(self, error: Any, node_errors: Mapping[str, Any], status: int = 400) -> None:
        self.error = error
        self.node_errors = dict(node_errors or {})
        self.status = status
        super().__init__(f"prompt rejected (HTTP {status}): {describe_rejection(error, self.node_errors)}")


class PromptFailed(ComfyHostError):
    """The prompt was accepted but its execution ended with status 'error'."""

    def __init__(self, prompt_id: str, entry: Mapping[str, Any]) -> None:
        self.prompt_id = prompt_id
        self.entry = dict(entry)
        self.execution_error = execution_error(entry)
        super().__init__(f"prompt {prompt_id} failed: {describe_execution_error(entry)}")


class PromptTimeout(ComfyHostError):
    """wait() ran out of time before the prompt showed up finished in /history."""


class WorkflowConversionError(ValueError):
    """A UI-format workflow cannot be turned into an API prompt."""


def describe_rejection(error: Any, node_errors: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if isinstance(error, dict):
        parts.append(f"{error.get('message', '')} {error.get('details', '')}".strip())
    elif error:
        parts.append(str(error))
    for node_id, info in node_errors.items():
        class_type = info.get("class_type", "?") if isinstance(info, dict) else "?"
        errors = info.get("errors", []) if isinstance(info, dict) else []
        for err in errors:
            parts.append(f"node {node_id} ({class_type}): {err.get('message', '')} {err.get('details', '')}".strip())
    return "; ".join(p for p in parts if p) or "no details"


def execution_error(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `execution_error` message stored in a history entry's status, if any."""
    status = entry.get("status") or {}
    for message in status.get("messages") or []:
        if isinstance(message, (list, tuple)) and len(message) == 2 and message[0] == "execution_error":
            return dict(message[1])
    return None


def describe_execution_error(entry: Mapping[str, Any]) -> str:
    err = execution_error(entry)
    if err is None:
        status = entry.get("status") or {}
        return f"status {status.get('status_str')!r} without an execution_error message"
    tb = "".join(err.get("traceback") or [])
    return (
        f"node {err.get('node_id')} ({err.get('node_type')}): {err.get('exception_type')}: "
        f"{err.get('exception_message', '').strip()}" + (f"\n{tb}" if tb else "")
    )


def find_tracebacks(log: str) -> list[str]:
    """Each Python traceback in a log, from its 'Traceback' line through the exception message."""
    blocks: list[str] = []
    lines = log.splitlines()
    i = 0
    while i < len(lines):
        if "Traceback (most recent call last):" not in lines[i]:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j][:1] in (" ", "\t"):
            j += 1
        # The exception line, plus the continuation of a multi-line message up to a blank line.
        while j < len(lines) and lines[j].strip() and "Traceback (most recent call last):" not in lines[j]:
            j += 1
        blocks.append("\n".join(lines[i:j]))
        i = j
    return blocks


# --------------------------------------------------------------------------------------------------
# The host process


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


# --------------------------------------------------------------------------------------------------
# Websocket events (a small RFC 6455 client: text frames in, close/pong out; binary previews are dropped)


class EventListener:
    """Collects the JSON messages ComfyUI sends on /ws?clientId=... in a background thread.

    ComfyUI sends per-prompt events (executing, progress, executed, execution_*) only to the socket whose
    clientId matches the prompt's client_id, so queue the prompt with this listener's client_id.
    """

    def __init__(self, host: str, port: int, client_id: str, timeout: float = 10) -> None:
        self.client_id = client_id
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._handshake(host, port)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read_loop, name=f"comfy-ws-{client_id[:8]}", daemon=True)
        self._thread.start()
        # The server registers the socket before sending its first "status" message; waiting for it means
        # that prompts queued afterwards are guaranteed to reach us.
        if not self.wait_for(lambda t, d: t == "status", timeout=timeout):
            self.close()
            raise ComfyHostError("websocket opened but the server sent no status message")

    def _handshake(self, host: str, port: int) -> None:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        path = "/ws?" + urllib.parse.urlencode({"clientId": self.client_id})
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ComfyHostError("websocket handshake: connection closed")
            head += chunk
        head, self._buffer = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ComfyHostError(f"websocket handshake refused: {lines[0]}")
        expected = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode("ascii")).digest()
        ).decode("ascii")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if headers.get("sec-websocket-accept") != expected:
            raise ComfyHostError("websocket handshake: bad Sec-WebSocket-Accept")

    def _recv_exact(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes = b"") -> None:
        # Client frames must be masked (RFC 6455 5.3).
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def _read_loop(self) -> None:
        message = b""
        message_opcode = 0
        try:
            while True:
                b0, b1 = self._recv_exact(2)
                fin, opcode = b0 & 0x80, b0 & 0x0F
                length = b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", self._recv_exact(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", self._recv_exact(8))
                mask = self._recv_exact(4) if b1 & 0x80 else None
                payload = self._recv_exact(length)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                if opcode == 0x8:
                    break
                if opcode == 0x9:
                    self._send_frame(0xA, payload)
                    continue
                if opcode in (0x1, 0x2):
                    message, message_opcode = payload, opcode
                elif opcode == 0x0:
                    message += payload
                else:
                    continue
                if fin and message_opcode == 0x1:
                    self._deliver(message)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _deliver(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        with self._cond:
            self.events.append((str(msg.get("type")), msg.get("data") or {}))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 30) -> bool:
        """Block until some event (past or future) satisfies predicate(type, data)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(predicate(t, d) for t, d in self.events):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._cond.wait(remaining)

    def wait_finished(self, prompt_id: str, timeout: float = 300) -> bool:
        """True once the server announced the end of prompt_id (success, error or interruption)."""
        return self.wait_for(
            lambda t, d: d.get("prompt_id") == prompt_id
            and (t in ("execution_success", "execution_error", "execution_interrupted")
                 or (t == "executing" and d.get("node") is None)),
            timeout,
        )

    def events_for(self, prompt_id: str, types: Iterable[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        wanted = set(types) if types is not None else None
        with self._cond:
            return [
                (t, d) for t, d in self.events
                if d.get("prompt_id") == prompt_id and (wanted is None or t in wanted)
            ]

    def progress_events(self, prompt_id: str) -> list[dict[str, Any]]:
        """The `progress` messages (value/max/node) that nodes reported through comfy.utils.ProgressBar."""
        return [d for _, d in self.events_for(prompt_id, ("progress",))]

    def close(self) -> None:
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# UI workflow (LiteGraph 0.4 "save" format) -> API prompt, following the 1.32 frontend's graphToPrompt

MODE_MUTED = 2
MODE_BYPASS = 4
REROUTE = "Reroute"
PRIMITIVE = "PrimitiveNode"
NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
VIRTUAL_TYPES = NOTE_TYPES | {REROUTE, PRIMITIVE}
# Input types the frontend draws as widgets (its ComfyWidgets table); all other inputs are plain sockets.
WIDGET_TYPES = frozenset(
    {"INT", "FLOAT", "BOOLEAN", "STRING", "COMBO", "MARKDOWN", "COLOR", "IMAGECOMPARE", "CHART", "GALLERIA", "TEXTAREA"}
)
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap"})
_SEED_NAMES = ("seed", "noise_seed")


class WidgetSpec(TypedDict):
    name: str
    type: str
    options: dict[str, Any]
    choices: list[Any] | None  # COMBO values: the V1 list form or V3's options["options"]
    extra_values: int  # frontend-only control widgets that follow this one in widgets_values
    force_input: bool


def _spec_type(spec: Any) -> str:
    head = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
    return "COMBO" if isinstance(head, list) else str(head)


def _spec_options(spec: Any) -> dict[str, Any]:
    if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1]
    return {}


def widget_specs(
    node_def: Mapping[str, Any], *, include_force_input: bool = False, extra_widget_types: Iterable[str] = ()
) -> list[WidgetSpec]:
    """The node's widgets in the order the frontend creates them: input_order required, then optional."""
    widget_types = WIDGET_TYPES | set(extra_widget_types)
    declared = node_def.get("input") or {}
    order = node_def.get("input_order") or {section: list(items) for section, items in declared.items()}
    specs: list[WidgetSpec] = []
    for section in ("required", "optional"):
        for name in order.get(section) or []:
            spec = (declared.get(section) or {}).get(name)
            if spec is None:
                continue
            options = _spec_options(spec)
            kind = str(options.get("widgetType") or _spec_type(spec))
            if kind not in widget_types:
                continue
            force = bool(options.get("forceInput"))
            if force and not include_force_input:
                continue
            extra = 0
            if kind == "INT":
                control = options.get("control_after_generate")
                extra = 1 if (name in _SEED_NAMES if control is None else control) else 0
            elif kind == "COMBO" and options.get("control_after_generate"):
                extra = 2  # control_after_generate plus control_filter_list
            head = spec[0] if isinstance(spec, (list, tuple)) and spec else None
            choices = head if isinstance(head, list) else options.get("options")
            specs.append(WidgetSpec(name=name, type=kind, options=options, choices=choices, extra_values=extra,
                                    force_input=force))
    return specs


def default_widget_value(widget: WidgetSpec) -> Any:
    options = widget["options"]
    if "default" in options:
        return options["default"]
    if widget["type"] == "COMBO":
        return widget["choices"][0] if widget["choices"] else None
    return {"INT": 0, "FLOAT": 0.0, "BOOLEAN": False}.get(widget["type"], "")


def _checked_value(widget: WidgetSpec, value: Any, where: str) -> Any:
    kind = widget["type"]
    ok = True
    if kind == "INT":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "FLOAT":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "BOOLEAN":
        ok = isinstance(value, bool)
    elif kind in ("STRING", "TEXTAREA", "MARKDOWN"):
        ok = isinstance(value, str)
    elif kind == "COMBO" and not widget["options"].get("multiselect"):
        ok = isinstance(value, (str, int, float))
    if not ok:
        raise WorkflowConversionError(
            f"{where}: widget {widget['name']!r} expects {kind} but got {value!r}; the widgets_values do not line "
            "up with this ComfyUI's definition of the node (saved by a different version of the node?)"
        )
    return value


def _wrap(value: Any) -> Any:
    # The frontend wraps list values so the server does not mistake them for [node_id, slot] links.
    return {"__value__": value} if isinstance(value, list) else value


def map_widget_values(
    node: Mapping[str, Any], node_def: Mapping[str, Any], *, extra_widget_types: Iterable[str] = ()
) -> dict[str, Any]:
    """Name the node's widgets_values. Missing trailing values take the input's default, like the frontend."""
    where = f"node {node.get('id')} ({node.get('type')})"
    specs = widget_specs(node_def, extra_widget_types=extra_widget_types)
    raw = node.get("widgets_values")
    if isinstance(raw, dict):  # some packs (e.g. VideoHelperSuite) save widgets by name
        return {
            w["name"]: _checked_value(w, raw[w["name"]], where) if raw.get(w["name"]) is not None
            else default_widget_value(w)
            for w in specs
        }
    values = list(raw or [])
    with_forced = widget_specs(node_def, include_force_input=True, extra_widget_types=extra_widget_types)
    if len(with_forced) != len(specs) and len(values) == sum(1 + w["extra_values"] for w in with_forced):
        # Workflows saved before forceInput inputs stopped being widgets still hold a value for each of them
        # (the frontend's migrateWidgetsValues drops those the same way).
        kept: list[Any] = []
        pos = 0
        for w in with_forced:
            chunk = values[pos:pos + 1 + w["extra_values"]]
            pos += len(chunk)
            if not w["force_input"]:
                kept.extend(chunk)
        values = kept + values[pos:]
    named: dict[str, Any] = {}
    pos = 0
    for w in specs:
        if pos < len(values) and values[pos] is not None:
            named[w["name"]] = _checked_value(w, values[pos], where)
        else:
            named[w["name"]] = default_widget_value(w)
        pos += 1
        if w["extra_values"] and pos < len(values):
            control = values[pos]
            if control not in CONTROL_VALUES:
                raise WorkflowConversionError(
                    f"{where}: expected a control_after_generate value after widget {w['name']!r}, got {control!r}; "
                    "the widgets_values do not line up with this ComfyUI's definition of the node"
                )
        pos += w["extra_values"]
    # Anything left over belongs to frontend-only widgets, which the frontend appends after all declared inputs
    # and never sends to the server: the "upload" button of image/video_upload combos (value "image"), audioUI +
    # upload for audio_upload, the 3D viewer of Preview3D/Load3D, and whatever a pack's own extension adds.
    return named


@dataclass(frozen=True)
class _Source:
    node_id: str
    slot: int


@dataclass(frozen=True)
class _Literal:
    value: Any


class _Muted:
    """Marks an input whose source node is muted: the frontend deletes such inputs from the prompt."""


_MUTED = _Muted()
_Resolved = _Source | _Literal | _Muted | None


def _types_compatible(a: Any, b: Any) -> bool:
    # LiteGraph.isValidConnection
    if a in (None, "", "*") or b in (None, "", "*") or a == b:
        return True
    a, b = str(a).lower(), str(b).lower()
    if "," not in a and "," not in b:
        return bool(a == b)
    return bool(set(a.split(",")) & set(b.split(",")))


class _UIGraph:
    def __init__(self, workflow: Mapping[str, Any], strict_bypass: bool = False) -> None:
        self.strict_bypass = strict_bypass
        self.nodes: dict[str, dict[str, Any]] = {}
        for node in workflow.get("nodes") or []:
            self.nodes[str(node["id"])] = node
        self.links: dict[int, tuple[str, int, str, int, Any]] = {}
        for link in workflow.get("links") or []:
            if isinstance(link, dict):  # workflow schema 1.0 stores links as objects
                fields = (link["id"], link["origin_id"], link["origin_slot"], link["target_id"],
                          link["target_slot"], link.get("type"))
            else:
                fields = tuple(link[:6])
            lid, src, src_slot, dst, dst_slot, kind = fields
            self.links[int(lid)] = (str(src), int(src_slot), str(dst), int(dst_slot), kind)

    @staticmethod
    def describe(node: Mapping[str, Any]) -> str:
        title = f" {node['title']!r}" if node.get("title") else ""
        return f"node {node.get('id')}{title} ({node.get('type')})"

    def resolve_input(self, node: Mapping[str, Any], index: int, seen: set[tuple[str, int]]) -> _Resolved:
        """What feeds input `index`; None when nothing does (the widget value, if any, then stays)."""
        inputs = node.get("inputs") or []
        if index >= len(inputs):
            return None
        link_id = inputs[index].get("link")
        if link_id is None:
            return None
        link = self.links.get(int(link_id))
        if link is None:
            raise WorkflowConversionError(f"{self.describe(node)}: input {inputs[index].get('name')!r} uses link "
                                          f"{link_id}, which is not in the workflow's links")
        wanted = inputs[index].get("type")
        if wanted is None:
            wanted = link[4]
        return self.resolve_output(link[0], link[1], wanted, seen)

    def resolve_output(self, node_id: str, slot: int, wanted: Any, seen: set[tuple[str, int]]) -> _Resolved:
        if (node_id, slot) in seen:
            raise WorkflowConversionError(f"cycle through node {node_id} output {slot}")
        seen.add((node_id, slot))
        node = self.nodes.get(node_id)
        if node is None:
            raise WorkflowConversionError(f"a link starts at node {node_id}, which is not in the workflow")
        mode = node.get("mode", 0)
        kind = node.get("type")
        if mode == MODE_BYPASS:
            index = self._bypass_input(node, slot, wanted)
            if index >= 0:
                return self.resolve_input(node, index, seen)
            if self.strict_bypass:
                raise WorkflowConversionError(
                    f"{self.describe(node)} is bypassed, but none of its inputs has the type {wanted!r} that its "
                    f"output {slot} feeds; un-bypass it or remove the link"
                )
            # The frontend leaves the consumer's input unconnected here (templates rely on it to switch off an
            # optional image); a required input then fails server-side validation, so nothing passes silently.
            return None
        if kind == REROUTE:
            return self.resolve_input(node, 0, seen)
        if kind == PRIMITIVE:
            values = node.get("widgets_values") or []
            return _Literal(values[0]) if values else None
        if kind in NOTE_TYPES:
            raise WorkflowConversionError(f"{self.describe(node)} is a note but has a link leaving it")
        if mode == MODE_MUTED:
            return _MUTED
        return _Source(node_id, slot)

    @staticmethod
    def _bypass_input(node: Mapping[str, Any], slot: int, wanted: Any) -> int:
        # Same choice as the frontend's ExecutableNodeDTO for bypassed nodes.
        inputs = node.get("inputs") or []
        outputs = node.get("outputs") or []
        out_type = outputs[slot].get("type") if slot < len(outputs) else "*"
        if wanted in ("*", "", None):
            return slot if len(inputs) > slot else (0 if inputs else -1)
        if slot < len(inputs):
            own = inputs[slot].get("type")
            if _types_compatible(own, out_type) and _types_compatible(own, wanted):
                return slot
        for i, inp in enumerate(inputs):
            if inp.get("type") == wanted:
                return i
        for i, inp in enumerate(inputs):
            if _types_compatible(inp.get("type"), out_type) and _types_compatible(inp.get("type"), wanted):
                return i
        return -1


def is_ui_workflow(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)


def workflow_to_api(
    ui_workflow: Mapping[str, Any],
    object_info: Mapping[str, Any],
    *,
    extra_widget_types: Iterable[str] = (),
    strict_bypass: bool = False,
) -> dict[str, dict[str, Any]]:
    """Convert a UI-format workflow to the API prompt the frontend would queue for it.

    Muted nodes are left out (and inputs fed by them dropped), bypassed nodes are routed through by type,
    Reroutes are followed, PrimitiveNode values are inlined, notes are ignored. Subgraphs are not supported.
    extra_widget_types names input types that a pack's frontend extension draws as widgets. With
    strict_bypass, a bypassed node that has no input of the type one of its outputs feeds raises instead of
    leaving that consumer input unconnected.
    """
    if not is_ui_workflow(ui_workflow):
        raise WorkflowConversionError("not a UI-format workflow (no 'nodes' list)")
    extra_types = tuple(extra_widget_types)
    subgraphs = {sg.get("id") for sg in ((ui_workflow.get("definitions") or {}).get("subgraphs") or [])}
    graph = _UIGraph(ui_workflow, strict_bypass)
    prompt: dict[str, dict[str, Any]] = {}
    for node_id, node in graph.nodes.items():
        kind = node.get("type")
        if kind in VIRTUAL_TYPES or node.get("mode", 0) in (MODE_MUTED, MODE_BYPASS):
            continue
        if kind in subgraphs:
            raise WorkflowConversionError(f"{graph.describe(node)} is a subgraph; subgraphs are not supported, "
                                          "unpack it in the editor first")
        node_def = object_info.get(kind)  # type: ignore[arg-type]
        if node_def is None:
            raise WorkflowConversionError(
                f"{graph.describe(node)}: node type {kind!r} is unknown to this ComfyUI (not in /object_info); "
                "is its pack installed and did it import without errors?"
            )
        inputs = {name: _wrap(value) for name, value in
                  map_widget_values(node, node_def, extra_widget_types=extra_types).items()}
        for index, slot in enumerate(node.get("inputs") or []):
            if slot.get("link") is None:
                continue
            name = (slot.get("widget") or {}).get("name") or slot.get("name")
            source = graph.resolve_input(node, index, set())
            if source is _MUTED:
                inputs.pop(name, None)
            elif isinstance(source, _Literal):
                inputs[name] = _wrap(source.value)
            elif isinstance(source, _Source):
                inputs[name] = [source.node_id, source.slot]
        title = node.get("title") or node_def.get("display_name") or kind
        prompt[node_id] = {"class_type": kind, "inputs": inputs, "_meta": {"title": title}}
    return prompt


# --------------------------------------------------------------------------------------------------
# Prompt editing helpers (used by the CLI)


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
        prompt[node_id]["inputs"][name] = _wrap(value)


def point_load_images(prompt: Mapping[str, dict[str, Any]], image_name: str) -> list[str]:
    """Make every LoadImage node read image_name from the input folder; returns their ids."""
    changed = []
    for node_id, node in prompt.items():
        if node.get("class_type") == "LoadImage":
            node["inputs"]["image"] = image_name
            changed.append(node_id)
    return changed


# --------------------------------------------------------------------------------------------------
# CLI


def _run_workflow(args: argparse.Namespace) -> int:
    workflow = json.loads(Path(args.workflow).read_text(encoding="utf-8"))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
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
        if is_ui_workflow(workflow):
            prompt = workflow_to_api(workflow, host.object_info())
            extra_data: dict[str, Any] | None = {"extra_pnginfo": {"workflow": workflow}}
        else:
            prompt, extra_data = copy.deepcopy(workflow), None
        if args.input_image:
            name = host.add_input_file(args.input_image)
            if not point_load_images(prompt, name):
                print("[comfy_host] warning: --input-image given but the workflow has no LoadImage node",
                      file=sys.stderr)
        apply_assignments(prompt, args.set or [])
        entry = host.run(prompt, timeout=args.timeout, extra_data=extra_data)
        # Saved results only: nodes' temp previews (loop previews, motion overlays) stay on the server.
        files = [f for f in host.output_files(entry) if f["type"] == "output"]
        if not files:
            print("[comfy_host] warning: the prompt succeeded but reported no output files", file=sys.stderr)
        for info in files:
            target = out_dir / ("" if info["type"] == "output" else info["type"]) / info["subfolder"] / info["filename"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(host.download(info))
            print(target)
        return 0
    except (PromptRejected, PromptFailed, PromptTimeout) as e:
        print(f"[comfy_host] {e}", file=sys.stderr)
        return 1
    except (WorkflowConversionError, KeyError, ValueError) as e:
        print(f"[comfy_host] cannot build the prompt: {e}", file=sys.stderr)
        return 2
    except HostStartError as e:
        print(f"[comfy_host] {e}", file=sys.stderr)
        return 3
    finally:
        host.stop()
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    args = parser.parse_args(argv)
    # Turn SIGTERM into SystemExit so the finally blocks stop the server we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if args.command == "run-workflow":
        return _run_workflow(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
