"""Motion presets of the procedural prior: the motion character of one kind of scene."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Preset:
    """The motion character of one kind of scene."""

    description: str
    mobility: str  # which cue combination says what moves (see MotionCues.mobility)
    wind_angle_deg: float = 0.0  # main motion axis, image coordinates (0 = right, 90 = down)
    follow_structure: float = 1.0  # 1: thin oriented things sway across their length; 0: always along the axis
    sideways: float = 0.3  # relative amplitude of motion across the main axis
    length_scale: float = 1.0  # phase coherence length relative to the natural default
    anisotropy: float = 1.0  # horizontal / vertical coherence length
    spectral_tilt: float = 0.0  # per-bin log slope added to the natural spectrum (> 0: more flicker)
    amplitude: float = 1.0
    gust_share: float = 0.35  # share of the lowest band driven by one scene-wide gust
    travel_speed: float = 0.0  # travelling-wave speed, long sides per second (0: standing sway)
    travel_angle_deg: float = 0.0
    anchored: bool = True  # bends from its support (plants, cloth); False: moves in place (water, flames, sky)


PRESETS: dict[str, Preset] = {
    "auto": Preset("Reads the picture: foliage, thin stalks, water and flames move; sky, skin and bare "
                   "surfaces stay nearly still.", mobility="auto"),
    "foliage": Preset("Leaves, grass and branches swaying in wind.", mobility="foliage", sideways=0.35),
    "water ripples": Preset("Small local ripples that bob and travel towards the viewer.", mobility="water",
                            wind_angle_deg=90.0, follow_structure=0.0, sideways=0.6, length_scale=0.35,
                            anisotropy=3.0, spectral_tilt=0.05, amplitude=0.6, gust_share=0.0,
                            travel_speed=0.04, travel_angle_deg=90.0, anchored=False),
    "flame flicker": Preset("Fast upward flicker of flames and candles.", mobility="flame", wind_angle_deg=-90.0,
                            follow_structure=0.0, sideways=0.5, length_scale=0.3, anisotropy=0.5,
                            spectral_tilt=0.12, amplitude=0.7, gust_share=0.0, travel_speed=0.12,
                            travel_angle_deg=-90.0, anchored=False),
    "cloth and hair": Preset("Fabric and hair rippling in a breeze; faces stay still.", mobility="cloth",
                             follow_structure=0.7, sideways=0.4, length_scale=1.3, spectral_tilt=0.02,
                             gust_share=0.3, travel_speed=0.08),
    "clouds drift": Preset("Slow, wide drift of clouds; the land stays still.", mobility="sky",
                           follow_structure=0.0, sideways=0.2, length_scale=2.5, anisotropy=2.0,
                           spectral_tilt=-0.2, gust_share=0.6, anchored=False),
}
DEFAULT_PRESET = "auto"


def preset_named(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset: unknown motion preset {name!r}; known: {', '.join(PRESETS)}") from None
