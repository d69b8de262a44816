"""MotionTexture: sample a spectral volume in time."""
from __future__ import annotations

from comfy_api.latest import io

from ..gid_engine.spectral import motion
from ..gid_engine.spectral.volume import SpectralVolume
from .types import CATEGORY, FPS, FRAMES, MotionTextureType, SpectralVolumeType



class MotionTexture(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_MotionTexture",
            display_name="Motion Texture",
            category=CATEGORY,
            description="Turns a spectral volume into per-frame displacement fields (an inverse FFT evaluated "
                        "lazily, so long or large outputs never sit in memory whole).",
            inputs=[
                SpectralVolumeType.Input("spectral_volume"),
                io.Int.Input("frames", default=120, **FRAMES.widget(), tooltip="Number of frames to produce."),
                io.Float.Input("fps", default=30.0, **FPS.widget(), step=0.5, tooltip="Output frame rate."),
                io.Float.Input("speed", default=1.0, **motion.SPEED.widget(), step=0.05,
                               tooltip="Time scale: 0.5 is slow motion at half rate, 2 is twice as fast, 0 freezes."),
                io.Boolean.Input("loop", default=True,
                                 tooltip="Snap every frequency band to a whole number of cycles over the clip, "
                                         "so the last frame wraps to the first like any other pair of frames."),
                io.Boolean.Input("start_on_picture", default=False,
                                 tooltip="Frame 0 is exactly the input picture (the motion is measured from it). "
                                         "Off, frame 0 is a rendered frame like every other one, which keeps an "
                                         "8-bit loop's restart invisible."),
                io.Float.Input("start_seconds", default=0.0, **motion.START_SECONDS.widget(), step=0.1,
                               tooltip="Start this far into the motion."),
                io.Boolean.Input("calm_start", default=True,
                                 tooltip="When looping, begin the loop (after start_seconds) at its calmest moment, "
                                         "so the restart falls where the motion is slowest."),
            ],
            outputs=[MotionTextureType.Output(display_name="motion_texture"),
                     io.Float.Output(display_name="fps")],
        )

    @classmethod
    def execute(cls, spectral_volume, frames: int, fps: float, speed: float, loop: bool,
                start_on_picture: bool, start_seconds: float, calm_start: bool) -> io.NodeOutput:
        if not isinstance(spectral_volume, SpectralVolume):
            raise ValueError(f"spectral_volume: expected a SPECTRAL_VOLUME, got {type(spectral_volume).__name__}")
        # the texture is lazy (fields are made chunk by chunk where they are used), so nothing large is allocated
        # here; the stage checks the values, the node that holds frames checks their memory
        texture = motion.MotionTexture.from_volume(spectral_volume, frames, fps, speed=speed, start_s=start_seconds,
                                                   loop=bool(loop), anchored=bool(start_on_picture),
                                                   calm_start=bool(calm_start))
        return io.NodeOutput(texture, texture.fps)
