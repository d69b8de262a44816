"""What can go wrong when driving a ComfyUI server, and how to read the server's own error reports."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ComfyHostError(RuntimeError):
    """Base class for everything this package raises about the server."""


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
