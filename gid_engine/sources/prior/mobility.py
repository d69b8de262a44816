"""Mobility: how free each pixel is to move (0 = must stay still, 1 = sways freely), and how far along its plant.

A cinemagraph lives on this: the subject still, the world around it alive. The estimate combines the cues of
`cues.py` (and the subjects of `subjects.py`) per preset:
- what moves: green vegetation, warm foliage (autumn leaves, backlit seed heads and grass) within reach of green
  plants (with the foliage preset everywhere), flowers and seed heads among plants, thin stalks, water below a
  mirrored waterline (it ripples in place; ripple-like bands low in the picture with the water preset), flames;
- what vetoes motion: sky (for every preset but clouds), smooth skin, subjects (people, faces, animals,
  compact objects; below a waterline they are reflections), rigid man-made structure (long straight edges,
  smooth specular surfaces), bare grey surfaces (rock, concrete, haze);
- subjects take the non-plant parts attached to them (legs, a head the outline left out: see
  `with_attached_parts`);
- doubt is not motion: in `auto` a pixel moves only near one the cues find clearly free (`confident_nearby`), and
  plant-coloured lines in level structure (the joints of boards and siding) are not leaves;
- the veto wins: a still thing among plants keeps still, and the motion ramps down *inside* the moving region
  before its edge (an eroded, then blurred map), so nothing still is dragged along by its neighbours.

`anchor_growth` then makes plants bend from where they are held: amplitude grows with the distance from the
support below them (ground, trunk, a rigid thing they stand on), so canopies move most at the top and tips and
stalks least at their base. Pictures without visible support (a meadow running out of the frame) keep most of
their amplitude; a tree or tall bush rising out of the frame's bottom edge sways more the higher it reaches
(`crown_growth`).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ... import imageops
from .cues import PLANT_LIKE, MotionCues

# Mobility below this is still: it holds up what is above it (anchors) and takes no motion.
SUPPORT_BELOW = 0.2
# Still regions narrower than this share of the picture's height are specks, not ground.
SUPPORT_SIZE = 0.04
# Distance from an anchor (share of the picture's height) at which a plant reaches half its full amplitude.
HALF_GROWTH = 0.08
# Tips (within about TIP_REACH of the height from a plant's outer edge) sway up to 1 / (1 - TIP_GAIN) times its
# inside.
TIP_REACH = 0.06
TIP_GAIN = 0.4
# The ramp from still to moving, as a share of the long side; laid inside the moving region.
EDGE_RAMP = 1 / 120
# A crown: plants rising from the frame's bottom edge (per column, gaps of CROWN_GAP of the height bridged) into
# the upper picture, from the first share of the height on (fully from the second), without reaching the top (a
# run beyond the first share of CROWN_FILLS fills the frame, fully from the second: grass seen from above), with
# nothing moving above them (still from the first share of the column above on, fully from the second).
CROWN_REACH = (0.4, 0.6)
CROWN_FILLS = (0.85, 0.95)
CROWN_OPEN = (0.7, 0.9)
CROWN_GAP = 0.05
# Non-plant parts attached to a subject (legs, a head) belong to it up to this share of the long side from its
# outline.
ATTACHED_REACH = 0.12
# Mobility of warm foliage among plants in the auto preset (green plants reach 1).
AUTUMN = 0.8
# Mobility of open water below a mirrored waterline in the auto preset (plants reach 1).
WATER_SURFACE = 0.8
# A crown's base sways this share of its top (the real tree of benchmarks/clips moves most at its top).
CROWN_BASE = 0.25
# Doubt is not motion: in the auto preset, mobility moves only within FAINT_REACH (share of the long side) of a
# pixel the cues find at least this free (none below the first value, fully from the second). Faint cues alone
# (planks, a brick wall, fur, a coat) were lifted up to 1 / FREE_FLOOR times by the free-level normalisation
# (model.free_level) and shimmered.
FAINT = (0.2, 0.35)
FAINT_REACH = 0.03


def mobility(cues: MotionCues, kind: str, subjects: torch.Tensor | None = None) -> torch.Tensor:
    """[1, 1, h, w] in 0..1 for one of the presets' cue combinations; `subjects` [1, 1, h, w] (1 = keep still)."""
    if subjects is not None and kind in ("auto", "water"):
        subjects = subjects * (1 - cues.water_surface)  # below a waterline lie reflections, not subjects
    if subjects is not None and kind == "auto":
        subjects = with_attached_parts(subjects, cues)
    still = cues.rigid if subjects is None else torch.maximum(cues.rigid, subjects)
    if kind == "auto":
        still = still * (1 - cues.water_surface)  # a reflected castle's straight edges are water too
    if kind == "auto":
        # Plant-coloured lines in level structure are the joints of planks and siding, not leaves. (Thin level
        # lines alone may be ripples on water: they move.)
        veg, thin, t = cues.vegetation * (1 - cues.level_structure), cues.thin, cues.texture
        # Ripple-like bands alone are no reason to move here: folds of a tunic, a truck's trim, planks and
        # layered rock look the same to that cue (it moved them, and hardly any water, on the labelled pictures
        # of benchmarks/mobility.py). Water below a mirrored waterline moves (below).
        loose = torch.maximum(veg, 0.8 * thin * (0.4 + 0.6 * veg))
        loose = torch.maximum(loose, 0.9 * cues.among_plants)
        loose = torch.maximum(loose, AUTUMN * cues.autumn_among_plants)
        # Foliage moves textured or not (a blurred background tree sways too), texture only adds to it;
        # texture alone (fur, fabric, brick, gravel) is not a reason to move.
        moving = loose * (0.45 + 0.55 * t)
        bare = 1 - imageops.smoothstep(0.12, 0.35, cues.saturation)  # grey rock, concrete, haze: rigid
        plant = torch.maximum(veg, cues.among_plants)  # white flowers and seed heads are not bare rock
        moving = moving * (1 - 0.8 * bare * (1 - plant)) * cues.free
        # Mirroring water ripples, dark or grey as it may be (it ripples in place: see ProceduralPrior).
        moving = torch.maximum(moving, WATER_SURFACE * cues.water_surface)
        moving = torch.maximum(moving, 0.7 * cues.flame)
    elif kind == "foliage":
        plant = torch.maximum(torch.maximum(cues.vegetation, 0.8 * cues.autumn), cues.thin)
        moving = cues.texture * (0.15 + 0.85 * plant) * cues.free
    elif kind == "water":
        lower_texture = 0.3 * cues.texture * cues.lower * (1 - cues.vegetation)
        moving = torch.maximum(torch.maximum(cues.water, cues.water_surface), lower_texture) * (1 - cues.sky)
        still = subjects if subjects is not None else torch.zeros_like(moving)  # ripples run along walls
    elif kind == "flame":
        moving = cues.flame
        still = torch.zeros_like(moving)  # a flame sits on a rigid candle or log, often inside an "object"
    elif kind == "cloth":
        moving = torch.maximum(cues.texture, 0.8 * cues.thin) * cues.free
        still = subjects * cues.skin.clamp(min=0.0) if subjects is not None else torch.zeros_like(moving)
    elif kind == "sky":
        moving = cues.sky
        still = torch.zeros_like(moving)
    else:
        raise ValueError(f"unknown mobility cue set {kind!r}")
    still = still.clamp(0, 1)
    moving = moving.clamp(0, 1) * (1 - still)
    if kind == "auto":
        moving = moving * confident_nearby(moving, max(cues.h, cues.w) * FAINT_REACH)
    if kind in ("auto", "foliage", "cloth"):
        unfree = 1 - cues.free
        if kind == "auto":
            unfree = unfree * (1 - cues.water_surface)  # mirrored bricks look like skin
        still = torch.maximum(still, unfree)  # sky and faces are kept clear of the ramp too
    return keep_clear_of(moving, still, max(cues.h, cues.w) * EDGE_RAMP)


def confident_nearby(mobility: torch.Tensor, reach: float) -> torch.Tensor:
    """Factor [1, 1, h, w] in 0..1: 1 within `reach` pixels of a pixel at least FAINT[1] free, 0 where nothing
    within reach is FAINT[0] free, smooth in between (a blurred local maximum: no edge to tear along). The soft
    fringe of a plant keeps its motion; a region the cues only half believe anywhere keeps still. Fails on: a
    plant that every cue reads faintly (an olive meadow, a bare winter tree) keeps still too."""
    size = 2 * max(1, round(reach)) + 1
    peak = F.max_pool2d(mobility, size, stride=1, padding=size // 2)
    return imageops.smoothstep(*FAINT, imageops.gaussian_blur(peak, reach / 2))


def with_attached_parts(subjects: torch.Tensor, cues: MotionCues) -> torch.Tensor:
    """`subjects` grown over the non-plant pixels connected to them, up to ATTACHED_REACH of the long side
    from their outline: legs, a head or a tail that the subject's outline left out are small non-plant things
    among plants, which `among_plants` takes for flower heads, and they swayed off a still body. A grown pixel
    keeps the confidence of the subject it grew from. Fails on: flowers touching a subject (they keep still),
    an animal's legs in grass as green as they are (the growth stops there)."""
    rows, cols = torch.nonzero(subjects[0, 0] > 0.05, as_tuple=True)
    if rows.numel() == 0:
        return subjects
    reach = max(1, round(ATTACHED_REACH * max(cues.h, cues.w)))
    # Only the subjects' neighbourhood can change: grow there.
    y0, y1 = max(0, int(rows.min()) - reach), min(cues.h, int(rows.max()) + reach + 1)
    x0, x1 = max(0, int(cols.min()) - reach), min(cues.w, int(cols.max()) + reach + 1)
    window = (..., slice(y0, y1), slice(x0, x1))
    passable = ((cues.vegetation[window] < PLANT_LIKE) & (cues.sky[window] < 0.5)
                & (cues.water_surface[window] < 0.5)).float()
    seed = subjects[window]
    grown = seed
    for _ in range((reach + 1) // 2):  # two pixels a step
        step = torch.maximum(seed, F.max_pool2d(grown, 5, stride=1, padding=2) * passable)
        if torch.equal(step, grown):
            break
        grown = step
    out = subjects.clone()
    out[window] = grown
    return out


def keep_clear_of(mobility: torch.Tensor, still: torch.Tensor, radius: float) -> torch.Tensor:
    """Blur `mobility` so it changes gently across space (or the splatted picture stretches and tears), with the
    ramp laid on the moving side of every still thing: motion stops a blur's reach before it, so nothing still
    is dragged along by its neighbours (a thin stalk on a plain background keeps all its motion)."""
    reach = max(1, int(round(1.5 * radius)))
    guard = F.max_pool2d((still > 0.5).float(), 2 * reach + 1, stride=1, padding=reach)
    return imageops.gaussian_blur(mobility * (1 - imageops.gaussian_blur(guard, radius / 2)), radius)


def anchor_growth(mobility: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Amplitude factor [1, 1, h, w] in 0..1: plants bend from where they are held and sway most at their tips.

    - Support: still ground (not sky) directly below moving pixels anchors them; amplitude grows with the
      distance from the nearest anchor (half of full at HALF_GROWTH of the height).
    - Plants running out of the frame's bottom edge are held below it: the bottom edge is a weak anchor
      (foreground grass keeps half its amplitude, so a meadow still moves all over).
    Tips sway more than a plant's inside: see `tip_gain`.
    """
    h, w = mobility.shape[-2:]
    moving = mobility[0, 0] > SUPPORT_BELOW
    support = ((~moving) & (sky[0, 0] < 0.5)).float().view(1, 1, h, w)
    # Only solid ground holds plants up: still specks inside a meadow (a dry patch, a shadow) are opened away.
    speck = max(1, round(SUPPORT_SIZE * h / 2))
    support = F.max_pool2d(-F.max_pool2d(-support, 2 * speck + 1, stride=1, padding=speck), 2 * speck + 1, stride=1,
                           padding=speck)[0, 0] > 0.5
    reach = max(1, round(h / 100))
    # A support pixel anchors the moving pixels just above it (gravity: plants stand on what holds them).
    anchors = support.clone()
    anchors[reach:] &= moving[:-reach]
    anchors[:reach] = False
    half = HALF_GROWTH * h
    growth = torch.ones(h, w)
    if bool(anchors.any()):
        distance = torch.from_numpy(cv2.distanceTransform((~anchors).numpy().astype(np.uint8), cv2.DIST_L2, 5))
        growth = distance / (distance + half)
    rows = torch.arange(h, dtype=torch.float32).view(h, 1)
    if bool(moving[-1].any()):
        above_bottom = (h - 1 - rows).expand(h, w)
        growth = growth * (0.5 + 0.5 * above_bottom / (above_bottom + 2 * half)) * crown_growth(moving)
    return growth.view(1, 1, h, w).to(mobility.dtype)


def crown_growth(moving: torch.Tensor) -> torch.Tensor:
    """Amplitude factor [h, w] in CROWN_BASE..1 for plants held below the frame's bottom edge: where the moving
    pixels of a column rise from the bottom edge well into the picture without filling it (CROWN_REACH and
    CROWN_FILLS) and nothing moves above them (CROWN_OPEN: open sky or a wall; a crown, not grass below a flower
    head that has more grass above it), they sway like a cantilever, from CROWN_BASE at the bottom to 1 at the top of the
    run; 1 elsewhere. Fails on: a meadow that rises to a horizon above the middle of the picture reads as a crown
    (its near grass moves less); a hedge up the side of the frame."""
    h, w = moving.shape
    gap = max(1, round(CROWN_GAP * h / 2))
    closed = moving.float().view(1, 1, h, w)
    closed = -F.max_pool2d(-F.max_pool2d(closed, (2 * gap + 1, 1), stride=1, padding=(gap, 0)), (2 * gap + 1, 1),
                           stride=1, padding=(gap, 0))
    run = torch.cumprod(closed[0, 0].flip(0), dim=0).sum(dim=0)  # moving pixels up from the bottom, per column
    above = torch.arange(h).view(h, 1) < (h - run).view(1, w)
    open_above = 1 - (moving & above).sum(dim=0) / above.sum(dim=0).clamp(min=1)  # still share above the run
    blur = lambda t: imageops.gaussian_blur(t.view(1, 1, 1, w), w / 20).view(w)  # noqa: E731  one tree, not a comb
    reach = blur(run)
    crown = (imageops.smoothstep(*CROWN_REACH, reach / h) * (1 - imageops.smoothstep(*CROWN_FILLS, reach / h))
             * blur(imageops.smoothstep(*CROWN_OPEN, open_above)))
    above_bottom = (h - 1 - torch.arange(h, dtype=torch.float32)).view(h, 1)
    height = (above_bottom / reach.clamp(min=1)).clamp(0, 1)
    return 1 - crown + crown * (CROWN_BASE + (1 - CROWN_BASE) * height)


def tip_gain(mobility: torch.Tensor) -> torch.Tensor:
    """Amplitude factor [1, 1, h, w] in 1 - TIP_GAIN .. 1: closeness to the moving region's outer edge (the
    distance to the nearest still pixel; the frame's edges are not edges of a plant)."""
    h = mobility.shape[-2]
    moving = (mobility[0, 0] > SUPPORT_BELOW).numpy().astype(np.uint8)
    inside = torch.from_numpy(cv2.distanceTransform(np.pad(moving, 1, mode="edge"), cv2.DIST_L2, 5)[1:-1, 1:-1])
    tips = torch.exp(-inside / (TIP_REACH * h))
    return (1 - TIP_GAIN + TIP_GAIN * tips).view(mobility.shape).to(mobility.dtype)
