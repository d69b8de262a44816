"""Words people search for that differ from the node names, for the node search box of ComfyUI versions whose
io.Schema has `search_aliases` (newer than 0.3.75); on older versions the schema is left as it is."""
from __future__ import annotations

import dataclasses

from comfy_api.latest import io

SEARCH_ALIASES: dict[str, list[str]] = {
    "GID_LoadGIDModel": ["generative image dynamics", "cinemagraph", "animate picture"],
    "GID_PredictSpectralVolume": ["cinemagraph", "animate picture", "animate still", "motion prediction", "sway"],
    "GID_MotionTexture": ["loop", "seamless loop", "motion field", "optical flow", "slow motion"],
    "GID_SoftmaxSplatRender": ["animate picture", "cinemagraph", "warp image", "render motion"],
    "GID_LoopVideo": ["loop", "seamless loop", "crossfade", "boomerang"],
    "GID_VideoToSpectralVolume": ["motion transfer", "optical flow", "video motion", "copy motion"],
    "GID_SaveSpectralVolume": ["save motion", "export motion"],
    "GID_LoadSpectralVolume": ["load motion", "motion transfer", "replay motion"],
    "GID_EditSpectrum": ["motion editor", "motion magnification", "equalizer", "sway"],
    "GID_LoadGIDRenderer": ["learned renderer", "frame synthesis"],
    "GID_SaveLoop": ["save video", "save gif", "save webp", "loop", "cinemagraph"],
    "GID_RenderLoopFile": ["save video", "long video", "loop", "cinemagraph"],
    "GID_InteractiveDynamics": ["poke", "pull", "drag", "physics", "sway", "spring"],
    "GID_MotionTracks": ["point tracks", "trajectory", "wan move", "ati", "motion paths", "spline"],
}


def schema_takes_aliases() -> bool:
    return any(f.name == "search_aliases" for f in dataclasses.fields(io.Schema))


def with_search_aliases(nodes: list[type[io.ComfyNode]]) -> list[type[io.ComfyNode]]:
    """The nodes, each schema given its SEARCH_ALIASES where io.Schema takes them (the classes are changed in
    place: define_schema is wrapped, so the aliases live here, in one table, not in every node file)."""
    if not schema_takes_aliases():
        return nodes
    for node in nodes:
        define = node.define_schema.__func__

        def define_schema(cls, _define=define):
            schema = _define(cls)
            schema.search_aliases = list(SEARCH_ALIASES.get(schema.node_id, ()))
            return schema

        node.define_schema = classmethod(define_schema)
    return nodes
