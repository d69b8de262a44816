"""The websocket a client opens on /ws to follow its prompts: progress, executing, executed, execution_*."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import websocket  # websocket-client, the client ComfyUI's own execution tests use

from .errors import ComfyHostError


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
        url = f"ws://{host}:{port}/ws?" + urllib.parse.urlencode({"clientId": client_id})
        try:
            self._ws = websocket.create_connection(url, timeout=timeout)
        except (OSError, websocket.WebSocketException) as e:
            raise ComfyHostError(f"cannot open the websocket {url}: {e}") from e
        self._ws.settimeout(None)  # the reader blocks until close() aborts it
        self._thread = threading.Thread(target=self._read_loop, name=f"comfy-ws-{client_id[:8]}", daemon=True)
        self._thread.start()
        # The server registers the socket before sending its first "status" message; waiting for it means
        # that prompts queued afterwards are guaranteed to reach us.
        if not self.wait_for(lambda t, d: t == "status", timeout=timeout):
            self.close()
            raise ComfyHostError("websocket opened but the server sent no status message")

    def _read_loop(self) -> None:
        try:
            while True:
                opcode, data = self._ws.recv_data()  # answers pings itself
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode == websocket.ABNF.OPCODE_TEXT:  # binary frames are image previews: not events
                    self._deliver(data)
        except (OSError, websocket.WebSocketException):
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _deliver(self, raw: bytes | str) -> None:
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

    def progress_events(self, prompt_id: str, node: str | None = None) -> list[dict[str, Any]]:
        """The `progress` messages (value/max/node) that nodes reported through comfy.utils.ProgressBar
        (only those of one node id when `node` is given)."""
        return [d for _, d in self.events_for(prompt_id, ("progress",)) if node is None or d.get("node") == node]

    def close(self) -> None:
        try:
            self._ws.send_close()  # the server answers with its own close frame, which ends the reader
        except (OSError, websocket.WebSocketException):
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
            self._ws.abort()  # wakes a reader that never got the answer
            self._thread.join(timeout=5)
        self._ws.shutdown()

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
