"""The host client's parts that need no ComfyUI: reading errors and logs, prompt editing, the CLI's exit codes and
the websocket listener (against a small aiohttp server that speaks like ComfyUI's /ws)."""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web
from comfy_host import (
    EventListener,
    PromptFailed,
    PromptRejected,
    apply_assignments,
    find_tracebacks,
    main,
    parse_assignment,
    point_load_images,
)


def test_find_tracebacks() -> None:
    log = (
        "Starting server\n"
        "Traceback (most recent call last):\n"
        '  File "/x/custom_nodes/comfyui-gid/nodes/model_nodes.py", line 8, in <module>\n'
        "    from ..gid_engine import nope\n"
        "ImportError: cannot import name 'nope'\n"
        "\n"
        "Cannot import /x/custom_nodes/comfyui-gid module for custom nodes: cannot import name 'nope'\n"
        "Traceback (most recent call last):\n"
        '  File "/x/comfy_extras/nodes_canny.py", line 1, in <module>\n'
        "ModuleNotFoundError: No module named 'kornia'\n"
    )
    blocks = find_tracebacks(log)
    assert len(blocks) == 2
    assert blocks[0].endswith("ImportError: cannot import name 'nope'")
    assert "gid_engine" in blocks[0] and "kornia" in blocks[1] and "Cannot import" not in blocks[0]


def test_errors_quote_the_servers_own_reports() -> None:
    # the shapes POST /prompt (400) and /history (status messages) answer with in ComfyUI 0.3.75
    rejected = PromptRejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed",
                               "details": ""},
                              {"7": {"class_type": "GID_LoopVideo", "errors": [
                                  {"message": "Value smaller than min", "details": "fps: 0.0 < 0.1"}]}})
    assert rejected.status == 400 and set(rejected.node_errors) == {"7"}
    assert "node 7 (GID_LoopVideo): Value smaller than min fps: 0.0 < 0.1" in str(rejected)

    entry = {"status": {"status_str": "error", "completed": False, "messages": [
        ["execution_start", {"prompt_id": "p1"}],
        ["execution_error", {"node_id": "3", "node_type": "GID_MotionTexture", "exception_type": "ValueError",
                             "exception_message": "frames: got 0, expected at least 1\n",
                             "traceback": ["  File x\n"]}]]}}
    failed = PromptFailed("p1", entry)
    assert failed.execution_error is not None and failed.execution_error["node_id"] == "3"
    assert str(failed).startswith("prompt p1 failed: node 3 (GID_MotionTexture): ValueError: frames: got 0")
    assert "status 'error' without an execution_error message" in str(PromptFailed("p2", {"status": {
        "status_str": "error"}}))


def test_prompt_editing_helpers() -> None:
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
              "4": {"class_type": "SaveAnimatedWEBP", "inputs": {"filename_prefix": "a", "lossless": True}},
              "10": {"class_type": "KSampler", "inputs": {"seed": 1}}}
    assert point_load_images(prompt, "mine.png") == ["1"]
    apply_assignments(prompt, ["10.seed=7", "4.filename_prefix=out/x", "4.lossless=false", "4.sizes=[1, 2]"])
    assert prompt["1"]["inputs"]["image"] == "mine.png"
    assert prompt["10"]["inputs"]["seed"] == 7 and prompt["4"]["inputs"]["lossless"] is False
    assert prompt["4"]["inputs"]["filename_prefix"] == "out/x"
    assert prompt["4"]["inputs"]["sizes"] == {"__value__": [1, 2]}  # a list must not read as a link
    with pytest.raises(KeyError, match="no node 99"):
        apply_assignments(prompt, ["99.seed=1"])
    for bad in ("seed=1", "10.seed", ".seed=1"):
        with pytest.raises(ValueError, match="expected NODE_ID.input=value"):
            parse_assignment(bad)


def test_cli_reports_a_missing_host_with_its_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}))
    code = main(["run-workflow", str(workflow), "--out", str(tmp_path / "out"), "--host-dir", str(tmp_path / "none"),
                 "--work-dir", str(tmp_path / "work")])
    assert code == 3
    assert "main.py not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# The websocket listener


class FakeComfyWebsocket:
    """/ws as ComfyUI serves it: a status message on connect, then what the test hands to send()."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sockets: list[web.WebSocketResponse] = []
        self.client_ids: list[str] = []
        self.closed_by_client = threading.Event()
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/ws", self._handler)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        self.loop.run_forever()

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.client_ids.append(request.query["clientId"])
        self.sockets.append(ws)
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}})
        async for message in ws:
            if message.type == WSMsgType.CLOSE:
                break
        self.closed_by_client.set()
        return ws

    def send(self, *frames: object) -> None:
        async def push() -> None:
            ws = self.sockets[-1]
            for frame in frames:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                elif frame == "ping":
                    await ws.ping()
                else:
                    await ws.send_json(frame)
        asyncio.run_coroutine_threadsafe(push(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def fake_ws() -> Iterator[FakeComfyWebsocket]:
    server = FakeComfyWebsocket()
    try:
        yield server
    finally:
        server.stop()


def test_listener_collects_one_prompts_events(fake_ws: FakeComfyWebsocket) -> None:
    with EventListener("127.0.0.1", fake_ws.port, "client-1", timeout=10) as events:
        assert fake_ws.client_ids == ["client-1"]
        assert [kind for kind, _ in events.events] == ["status"]  # it waited for the server's hello
        fake_ws.send(
            {"type": "execution_start", "data": {"prompt_id": "p1"}},
            b"\x00\x00\x00\x01 a binary preview, not an event",
            "ping",
            {"type": "progress", "data": {"prompt_id": "p1", "node": "2", "value": 1, "max": 2}},
            {"type": "progress", "data": {"prompt_id": "other", "node": "9", "value": 1, "max": 1}},
            {"type": "progress", "data": {"prompt_id": "p1", "node": "2", "value": 2, "max": 2}},
        )
        assert not events.wait_finished("p1", timeout=0.2)
        fake_ws.send({"type": "executing", "data": {"prompt_id": "p1", "node": None}})
        assert events.wait_finished("p1", timeout=10)
        assert [(p["value"], p["max"]) for p in events.progress_events("p1")] == [(1, 2), (2, 2)]
        assert [kind for kind, _ in events.events_for("p1")] == ["execution_start", "progress", "progress",
                                                                 "executing"]
    assert fake_ws.closed_by_client.wait(10)  # close() ends the socket with a close handshake


def test_listener_names_the_url_when_nothing_listens() -> None:
    from comfy_host import ComfyHostError, free_port

    port = free_port()
    with pytest.raises(ComfyHostError, match=f"cannot open the websocket ws://127.0.0.1:{port}/ws"):
        EventListener("127.0.0.1", port, "nobody", timeout=5)
