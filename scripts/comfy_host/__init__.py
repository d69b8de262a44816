"""Drive a real ComfyUI server as a black box: start it with our pack loaded, queue prompts, collect outputs.

Used by the host and browser tests (tests/host, tests/browser), the demo (scripts/demo.sh) and benchmarks. One
module per job:
    errors    what can go wrong, and reading the server's error reports and log tracebacks
    server    ComfyHost: the server process (start/stop, log) and its HTTP API (queue, wait, run, download ...)
    events    EventListener: the /ws websocket (progress and execution events) over websocket-client
    workflow  UI-format workflow -> API prompt, as the frontend's graphToPrompt builds it
    cli       `python scripts/comfy_host run-workflow ...`
"""
from .cli import apply_assignments, main, parse_assignment, point_load_images, run_workflow
from .errors import (
    ComfyHostError,
    HostStartError,
    PromptFailed,
    PromptRejected,
    PromptTimeout,
    WorkflowConversionError,
    describe_execution_error,
    describe_rejection,
    execution_error,
    find_tracebacks,
)
from .events import EventListener
from .server import DEFAULT_PACK_NAME, REPO_ROOT, ComfyHost, OutputFile, default_host_dir, free_port
from .workflow import (
    CONTROL_VALUES,
    MODE_BYPASS,
    MODE_MUTED,
    WIDGET_TYPES,
    WidgetSpec,
    default_widget_value,
    is_ui_workflow,
    map_widget_values,
    widget_specs,
    workflow_to_api,
    wrap_literal,
)

__all__ = [
    "CONTROL_VALUES", "DEFAULT_PACK_NAME", "MODE_BYPASS", "MODE_MUTED", "REPO_ROOT", "WIDGET_TYPES",
    "ComfyHost", "ComfyHostError", "EventListener", "HostStartError", "OutputFile", "PromptFailed",
    "PromptRejected", "PromptTimeout", "WidgetSpec", "WorkflowConversionError",
    "apply_assignments", "default_host_dir", "default_widget_value", "describe_execution_error",
    "describe_rejection", "execution_error", "find_tracebacks", "free_port", "is_ui_workflow", "main",
    "map_widget_values", "parse_assignment", "point_load_images", "run_workflow", "widget_specs",
    "workflow_to_api", "wrap_literal",
]
