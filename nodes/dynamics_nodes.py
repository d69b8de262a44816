"""InteractiveDynamics: pull or flick points of the picture and get the spring-back as a motion texture."""
from __future__ import annotations

import logging

from comfy_api.latest import io

from ..gid_engine.dynamics.actions import parse_actions
from ..gid_engine.dynamics.preview import basis_preview
from ..gid_engine.dynamics.simulate import DAMPING_MODELS, Controls, simulate
from ..gid_engine.spectral.volume import SpectralVolume
from . import comfy_bridge as bridge
from .types import CATEGORY, MotionTextureType, SpectralVolumeType
from .ui_payloads import motion_overlay_ui, preview_size, save_temp_pictures, shrunk

ACTIONS_HELP = ('The user\'s actions as a JSON list ([] = none; the editor on the node writes it when you drag on '
                'the picture). A pull: {"type": "pull", "at": [x, y], "pull": [dx, dy], "release_s": 0} with x, y '
                'fractions (0..1) of the width and height and dx, dy pixels of the picture; a flick: {"type": '
                '"impulse", "at": [x, y], "velocity": [vx, vy], "time_s": 0} in pixels per second.')


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
                io.Int.Input("frames", default=120, min=1, max=100000, tooltip="Frames from the release on."),
                io.Float.Input("fps", default=30.0, min=0.1, max=240.0, step=0.5, tooltip="Output frame rate."),
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
                stiffness: float, strength: float, image=None) -> io.NodeOutput:
        if not isinstance(spectral_volume, SpectralVolume):
            raise ValueError(f"spectral_volume: expected a SPECTRAL_VOLUME, got {type(spectral_volume).__name__}")
        parsed = parse_actions(actions)
        controls = Controls(frames=frames, fps=fps, damping=damping, damping_model=damping_model,
                            stiffness=stiffness, strength=strength).checked()
        if image is not None:
            bridge.check_image("image", image)
        volume = spectral_volume.to(bridge.compute_device())
        motion = simulate(volume, parsed, controls)
        for note in motion.notes:  # actions their point could not follow (also shown on the node's editor)
            logging.warning("GID Interactive Dynamics: %s", note)
        ui = {"gid_dynamics": [{**basis_preview(volume, controls), **picture_file(image, volume),
                                "notes": list(motion.notes)}],
              **motion_overlay_ui(volume, image)}
        return io.NodeOutput(motion.replace(volume=volume.to(bridge.output_device())), controls.fps, ui=ui)


def picture_file(image, volume: SpectralVolume) -> dict:
    """{"picture": temp PNG of the first picture} for the editor to warp, or {} without a picture."""
    if image is None:
        return {}
    picture = shrunk(image[:1].permute(0, 3, 1, 2), preview_size(image.shape[1], image.shape[2]))
    filename, subfolder = save_temp_pictures("gid_dynamics", picture.permute(0, 2, 3, 1), ".png")
    return {"picture": {"filename": filename, "subfolder": subfolder, "type": "temp"}}
