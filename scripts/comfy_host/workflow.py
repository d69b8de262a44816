"""UI-format workflows (what the editor saves: LiteGraph 0.4 / schema 1.0) -> the API prompt POST /prompt takes.

Follows the 1.32 frontend's graphToPrompt so that a shipped UI workflow runs headless (demo, CLI, host tests)
exactly as the Run button would queue it. The frontend functions each rule mirrors are named where it applies.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from .errors import WorkflowConversionError

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


def wrap_literal(value: Any) -> Any:
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
        inputs = {name: wrap_literal(value) for name, value in
                  map_widget_values(node, node_def, extra_widget_types=extra_types).items()}
        for index, slot in enumerate(node.get("inputs") or []):
            if slot.get("link") is None:
                continue
            name = (slot.get("widget") or {}).get("name") or slot.get("name")
            source = graph.resolve_input(node, index, set())
            if source is _MUTED:
                inputs.pop(name, None)
            elif isinstance(source, _Literal):
                inputs[name] = wrap_literal(source.value)
            elif isinstance(source, _Source):
                inputs[name] = [source.node_id, source.slot]
        title = node.get("title") or node_def.get("display_name") or kind
        prompt[node_id] = {"class_type": kind, "inputs": inputs, "_meta": {"title": title}}
    return prompt
