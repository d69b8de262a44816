"""InteractiveDynamics: pull or flick points of the picture and get the spring-back as a motion texture."""
from __future__ import annotations

import logging

from comfy_api.latest import io

from ..gid_engine.dynamics.actions import MAX_ACTIONS, parse_actions, pulls_from_paths
from ..gid_engine.dynamics.simulate import DAMPING_MODELS, Controls, simulate
from ..gid_engine.spectral import tracks as track_formats
from ..gid_engine.spectral.volume import SpectralVolume
from . import comfy_bridge as bridge
from .types import CATEGORY, FPS, FRAMES, MotionTextureType, SpectralVolumeType, TracksType
from .ui_payloads import dynamics_ui

ACTIONS_HELP = ('The user\'s actions as a JSON list ([] = none; the editor on the node writes it when you drag on '
                'the picture). A pull: {"type": "pull", "at": [x, y], "pull": [dx, dy], "release_s": 0} with x, y '
                'fractions (0..1) of the width and height and dx, dy pixels of the picture; a flick: {"type": '
                '"impulse", "at": [x, y], "velocity": [vx, vy], "time_s": 0} in pixels per second.')


PATH_HELP = ('A drawn path as a pull: KJNodes coordinate JSON (e.g. the Spline Editor\'s coordinates), a list of '
             '{"x", "y"} pixel points per frame, or a list of such tracks. Each path grabs its first point, drags it '
             'to its last and lets go when the path ends (points - 1 frames in). Pixels of the image input, or of '
             'the spectral volume without one.')


class InteractiveDynamics(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_InteractiveDynamics",
            display_name="Interactive Dynamics",
            category=CATEGORY,
            description="Pull a point of the picture and let go (or flick it): the spectral volume, read as a modal "
                        "basis (paper §5), springs back and rings down like a real branch. A drop-in for Motion "
                        "Texture: frame 0 is the release, regions without motion never move.",
            inputs=[
                SpectralVolumeType.Input("spectral_volume"),
                io.String.Input("actions", default="[]", multiline=True, tooltip=ACTIONS_HELP),
                io.Int.Input("frames", default=120, **FRAMES.widget(), tooltip="Frames from the release on."),
                io.Float.Input("fps", default=30.0, **FPS.widget(), step=0.5, tooltip="Output frame rate."),
                io.Float.Input("damping", default=Controls.damping, min=0.0, max=100.0, step=0.01,
                               tooltip="Damping ratio: 0 rings forever, 1 settles without overshoot."),
                io.Combo.Input("damping_model", options=list(DAMPING_MODELS), default=Controls.damping_model,
                               tooltip="rayleigh: the damping ratio is met at the lowest and highest band and "
                                       "fast modes die out sooner; per_mode: the same ratio for every band."),
                io.Float.Input("stiffness", default=1.0, min=0.01, max=100.0, step=0.05,
                               tooltip="Spring stiffness multiplier: frequencies scale by its square root."),
                io.Float.Input("strength", default=1.0, min=-100.0, max=100.0, step=0.05,
                               tooltip="Multiplies every pull and flick."),
                io.Image.Input("image", optional=True,
                               tooltip="The picture, only for the editor on the node (drag on it to pull)."),
                io.String.Input("path", optional=True, force_input=True, tooltip=PATH_HELP),
                TracksType.Input("tracks", optional=True, tooltip="Core TRACKS read as drawn paths, like path."),
            ],
            outputs=[MotionTextureType.Output(display_name="motion_texture",
                                              tooltip="For Softmax Splat Render, like Motion Texture's."),
                     io.Float.Output(display_name="fps")],
        )

    @classmethod
    def validate_inputs(cls, actions=None, **_) -> bool | str:
        """Bad actions are refused when the prompt is queued, before anything runs."""
        if not isinstance(actions, str):
            return True  # fed by a link: checked when it runs
        try:
            parse_actions(actions)
        except ValueError as err:
            return str(err)
        return True

    @classmethod
    def execute(cls, spectral_volume, actions: str, frames: int, fps: float, damping: float, damping_model: str,
                stiffness: float, strength: float, image=None, path=None, tracks=None) -> io.NodeOutput:
        if not isinstance(spectral_volume, SpectralVolume):
            raise ValueError(f"spectral_volume: expected a SPECTRAL_VOLUME, got {type(spectral_volume).__name__}")
        parsed = parse_actions(actions)
        controls = Controls(frames=frames, fps=fps, damping=damping, damping_model=damping_model,
                            stiffness=stiffness, strength=strength).checked()
        if image is not None:
            bridge.check_image("image", image)
        parsed += drawn_pulls(spectral_volume, controls, image, path, tracks)
        if len(parsed) > MAX_ACTIONS:
            raise ValueError(f"actions, path and tracks: {len(parsed)} pulls and flicks together; allowed: at most "
                             f"{MAX_ACTIONS}")
        volume = spectral_volume.to(bridge.compute_device())
        motion = simulate(volume, parsed, controls)
        for note in motion.notes:  # actions their point could not follow (also shown on the node's editor)
            logging.warning("GID Interactive Dynamics: %s", note)
        # The motion is driven by its objects' modes (motion.volume), not by the input volume itself.
        return io.NodeOutput(motion.replace(volume=motion.volume.to(bridge.output_device())), controls.fps,
                             ui=dynamics_ui(volume, motion, controls, image))


def drawn_pulls(volume: SpectralVolume, controls: Controls, image, path, tracks) -> list:
    """The pulls of the drawn paths (path: KJNodes coordinates; tracks: core TRACKS), in the image's pixels (the
    volume's grid without an image), one point per frame at the node's fps."""
    height, width = (image.shape[1], image.shape[2]) if image is not None else (volume.height, volume.width)
    drawn = []
    if path is not None and (not isinstance(path, str) or path.strip()):
        drawn.append(("path", track_formats.parse_coordinates(path, "path")))
    if tracks is not None:
        drawn.append(("tracks", track_formats.tracks_from_core(tracks, "tracks")))
    return [pull for name, paths in drawn for pull in pulls_from_paths(
        paths, volume.height, volume.width, width=width, height=height, fps=controls.fps, name=name)]
