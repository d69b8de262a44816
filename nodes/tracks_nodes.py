"""MotionTracks: GID motion as point tracks for video models that follow tracks (Wan-Move, ATI)."""
from __future__ import annotations

import torch
from comfy_api.latest import io

from ..gid_engine import checks
from ..gid_engine.spectral import tracks
from ..gid_engine.spectral.motion import MotionTexture
from . import comfy_bridge as bridge
from .types import CATEGORY, MotionTextureType, TracksType

BATCH_INDEX = checks.Range(0, 4095, whole=True)


class MotionTracks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GID_MotionTracks",
            display_name="Motion Tracks",
            category=CATEGORY,
            description="Follows points of the picture through a motion texture (or Interactive Dynamics' "
                        "response): where each point's pixel is in every frame, exactly as the renderer moves it. "
                        "Outputs core TRACKS and KJNodes-style coordinate JSON, so Wan-Move and ATI video models "
                        "can follow GID's looping motion.",
            inputs=[
                MotionTextureType.Input("motion_texture"),
                io.Int.Input("count", default=32, min=1, max=tracks.MAX_TRACKS,
                             tooltip="How many tracks: about this many on an even grid over the picture, or at most "
                                     "this many spread over the mask."),
                io.Image.Input("image", optional=True,
                               tooltip="The picture the motion is rendered on: tracks are in its pixels. Without it, "
                                       "in the motion texture's own grid."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Put the tracks only where the mask is white (>= 0.5); same size as the "
                                      "tracks' pixel grid."),
                io.Int.Input("batch_index", default=0, **BATCH_INDEX.widget(), optional=True,
                             tooltip="Which picture's motion, when the motion texture holds several."),
            ],
            outputs=[
                TracksType.Output(display_name="tracks",
                                  tooltip="Core TRACKS: track_path [frames, tracks, 2] pixels and track_visibility "
                                          "[frames, tracks] (a point is visible while inside the picture)."),
                io.String.Output(display_name="coordinates",
                                 tooltip='KJNodes coordinate JSON: a list per track of {"x", "y"} pixels per frame.'),
                io.Int.Output(display_name="track_length", tooltip="Frames in every track."),
            ],
        )

    @classmethod
    def execute(cls, motion_texture, count: int, image=None, mask=None, batch_index: int = 0) -> io.NodeOutput:
        if not isinstance(motion_texture, MotionTexture):
            raise ValueError(f"motion_texture: expected a MOTION_TEXTURE, got {type(motion_texture).__name__}")
        count = checks.integer("count", count, minimum=1, maximum=tracks.MAX_TRACKS)
        batch_index = BATCH_INDEX.check("batch_index", batch_index)
        if batch_index >= motion_texture.batch:
            raise ValueError(f"batch_index: {batch_index} is out of range; the motion texture holds "
                             f"{motion_texture.batch} motion(s), so allowed: 0..{motion_texture.batch - 1}")
        if image is not None:
            bridge.check_image("image", image)
            height, width = image.shape[1:3]
        else:
            height, width = motion_texture.height, motion_texture.width
        if mask is not None:
            # only the size of the reference matters to the check: a shape-only tensor stands in for the image
            shape = torch.empty((motion_texture.batch, height, width, 3), device="meta")
            masks = bridge.check_mask("mask", mask, shape)
            points = tracks.mask_points(masks[min(batch_index, masks.shape[0] - 1)].cpu(), count)
        else:
            points = tracks.grid_points(height, width, count)
        path, visible = tracks.sample_tracks(motion_texture, points, height, width, batch_index)
        out = bridge.output_device()
        return io.NodeOutput(tracks.core_tracks(path.to(out), visible.to(out)), tracks.coordinates_json(path),
                             path.shape[0])
