"""Subjects a cinemagraph keeps still: people (faces, heads, bodies), animals, compact man-made objects.

`subject_mask(image)` gives a soft mask, 1 on what must stay still; `detect_subjects(image)` gives the boxes
behind it (for a debug overlay). Everything runs on the CPU with what OpenCV and numpy bring; nothing is
fetched. A subject's mask value is its confidence (score / 0.75, at most 1): doubtful ones only damp motion.

The cues, and what each fails on:
- **OpenCV's Haar cascades and HOG people detector**, only where the installed OpenCV has them: 4.x ships
  `CascadeClassifier`, `HOGDescriptor` and the cascade files; 5.x (what `pip install opencv-python` gives
  now) has none of them, and then the cues below work alone. Frontal and profile faces (the profile cascade
  also on the mirrored picture), scanned at 360 px and, in colour pictures, only around skin; cat faces
  and HOG pedestrians on the whole picture. They miss faces under ~25 px at 640, faces turned past profile,
  people seen from behind or sitting (HOG wants upright pedestrians) and every animal but a frontal cat;
  they fire on foliage and fur, so a face must hold skin-coloured pixels (colour pictures) and several
  neighbouring hits, and a body hit must not be mostly vegetation. The Haar upper/full-body cascades are
  left out: slower than all the rest and mostly wrong on grass.
- **Faces from skin** (always): smooth pixels in the YCrCb skin box (Chai & Ngan 1999) with skin-like
  saturation form regions; in a region's top, face-proportioned windows are tested for the face's shading:
  two eye spots darker than the nose bridge and the cheeks (and than the skin just under them), not
  skin-coloured themselves, whole cheeks and nose, and the skin ending beside the face at eye level.
  Fails on grey or strongly tinted pictures (no skin colour), faces under ~4.5% of the long side, faces in
  shadow, with sunglasses or turned away; fires now and then on skin-coloured things with two dark spots
  (windows in a brick wall or their reflection, a cup's handle).
- **Head and body from a face**: the head grows from the face (forehead and skull, not long hair, which
  is let move), the body hangs below it with adult proportions (shoulders ~3 face widths, torso ~3 face
  heights, legs ~4 more), clipped to the picture. A seated, lying or bent person or a close crop gets a
  wrong body guess; the outline step below trims most of what is not the person.
- **Outlines by GrabCut** (Rother et al. 2004) for people and detector boxes: two iterations on a crop of
  at most 96 px, the face and the chest below it as sure foreground, the guessed head, torso and legs as
  probable foreground. It fails where the subject's colours continue into the surroundings (an orange suit
  filling the frame, a green dress in a meadow): it then keeps the face and chest only, or, when it keeps
  almost nothing, the guessed shape.
- **Islands** (always), for animals, vehicles and objects: the moving world of a cinemagraph is mostly
  plants, grass and water, and what interrupts it is what it keeps still. Two passes at 192 px: regions
  that are not plant-coloured and are ringed by plants (a cow, a sheep, a hedgehog, a car, drums in a
  meadow); then regions coloured neither like plants nor like the ground at the lower frame edges that
  stand on that ground (horses on a dry prairie, swans on dark water). A region must be compact, not
  tiny (>= 0.4% of the picture, and calm inside its outline unless >= 3%: a small region is mostly outline,
  and every outline is busy), not most of the picture, not a band across it
  (a lake, a road), must not reach the top edge (sky, hills, a tree line) and is cut off long spurs. Its
  outline is the region itself. Fails on subjects coloured like their ground (a tan animal on dry
  grass, a grey car on a grey road), on subjects not standing in plants or on the frame's ground
  (dogs in a window, a man on a stump by a rock), on glass coloured like the plants behind it (a green
  bottle's neck and shoulders among grass; its label and the body below it are found), and it takes
  calm non-plant patches for subjects: a castle's reflection in still water, an autumn-coloured patch in
  a green slope, a bright sky patch under a tree line; tails and manes are kept still with the animal.
"""
from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# Detection runs at this long side: faces of ~12 px here are ~2% of the picture's long side.
DETECT_LONG_SIDE = 480
# GrabCut runs on crops of at most this long side; its cost grows with the pixel count.
CUT_LONG_SIDE = 96
CUT_ITERATIONS = 2
# Haar cascades and HOG (where OpenCV has them) scan at this long side: ~20 px faces at 640 are 11 px here,
# below what they find, but at 480 they cost several times the rest of the cue.
CASCADE_LONG_SIDE = 360
# Plant/non-plant regions are read at this long side: subjects are large, the cost small.
ISLAND_LONG_SIDE = 192
# Lab cell size (8-bit units) within which colours count as the ground's (with the neighbouring cells).
GROUND_CELL = 10

KINDS = ("person", "animal", "object")


@dataclasses.dataclass(frozen=True)
class Subject:
    """One thing to keep still. box is (x0, y0, x1, y1) in pixels of the picture given, x1/y1 exclusive."""
    kind: str
    box: tuple[int, int, int, int]
    score: float
    source: str = ""


@dataclasses.dataclass
class _Found:
    subject: Subject
    sure: list[tuple[int, int, int, int]]  # cores that surely are the subject (face, chest), detection grid
    likely: list[tuple[int, int, int, int]]  # regions that probably are (head, torso, legs), detection grid
    shape: np.ndarray | None = None  # an outline already known (float 0..1 on the detection grid): no GrabCut
    open_below: int | None = None  # below this row the margin may still be the subject (arms, a wide coat)


def subject_mask(image: torch.Tensor) -> torch.Tensor:
    """image [1, 3, H, W] float 0..1 on CPU. Returns [1, 1, H, W] float 0..1: 1 on subjects that must stay
    still, 0 elsewhere, soft edges of a few pixels."""
    return _analyse(image)[1]


def detect_subjects(image: torch.Tensor) -> list[Subject]:
    """The subjects found in image [1, 3, H, W] (0..1), boxes in its pixels, best first."""
    return _analyse(image, with_mask=False)[0]


def _analyse(image: torch.Tensor, with_mask: bool = True) -> tuple[list[Subject], torch.Tensor | None]:
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"image: expected [1, 3, H, W], got {tuple(image.shape)}")
    _, _, h, w = image.shape
    rgb = (image[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)
    scale = min(1.0, DETECT_LONG_SIDE / max(h, w))
    dh, dw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(rgb, (dw, dh), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    found = _detect(small)
    subjects = [dataclasses.replace(f.subject, box=_rescale(f.subject.box, 1 / scale, w, h)) for f in found]
    if not with_mask:
        return subjects, None
    mask = np.zeros((dh, dw), np.float32)
    for f in found:
        np.maximum(mask, _strength(f.subject.score) * _outline(small, f), out=mask)
    out = torch.from_numpy(mask)[None, None]
    if (dh, dw) != (h, w):
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    # Soft edges of a few pixels of the caller's picture, whatever the detection grid was.
    sigma = max(1.0, max(h, w) / 320)
    k = int(2 * round(2.5 * sigma) + 1)
    out = torch.from_numpy(cv2.GaussianBlur(out[0, 0].numpy(), (k, k), sigma))[None, None]
    return subjects, out.clamp(0, 1)


def _strength(score: float) -> float:
    """Mask value of a subject: confident ones are fully still, doubtful ones only damp motion."""
    return float(np.clip(score / 0.75, 0, 1))


def _rescale(box, factor, w, h):
    x0, y0, x1, y1 = box
    return (max(0, int(x0 * factor)), max(0, int(y0 * factor)),
            min(w, int(np.ceil(x1 * factor))), min(h, int(np.ceil(y1 * factor))))


# ----------------------------------------------------------------------------------------------------------
# Detection


def _detect(rgb: np.ndarray) -> list[_Found]:
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    skin = _skin_map(rgb, gray)
    colour = _is_colour(rgb)
    faces = _cascade_faces(gray, skin, colour) + _skin_faces(skin, gray)
    faces = _suppress(faces, 0.3)
    found = []
    for box, score, source in faces:
        found.append(_person_from_face(box, score, source, w, h))
    for box, score, source, kind in _cascade_bodies(gray, rgb, [f.subject.box for f in found]):
        found.append(_Found(Subject(kind, box, score, source), [], [box]))
    for box, score, shape in _islands(rgb):
        if not any(_overlap(box, f.subject.box) > 0.6 for f in found):
            found.append(_Found(Subject("object", box, score, "island"), [], [box], shape))
    found.sort(key=lambda f: -f.subject.score)
    return found


def _is_colour(rgb: np.ndarray) -> bool:
    spread = rgb.max(2).astype(np.int16) - rgb.min(2)
    return float(np.mean(spread > 12)) > 0.05


def _skin_map(rgb: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Smooth skin-coloured pixels, uint8 0/255."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    colour = (cr >= 135) & (cr <= 175) & (cb >= 80) & (cb <= 130) & (y >= 45)
    # Skin is moderately saturated: autumn leaves, flames and sunset glow are more, wood and sand often less.
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    colour &= (hsv[..., 1] >= 30) & (hsv[..., 1] <= 170) & ((hsv[..., 0] <= 25) | (hsv[..., 0] >= 170))
    # Skin is smooth at this scale; foliage, fur and wheat of the same hue are not.
    g = gray.astype(np.float32)
    mean = cv2.blur(g, (5, 5))
    std = np.sqrt(np.maximum(cv2.blur(g * g, (5, 5)) - mean * mean, 0))
    smooth = std < 10 + 0.06 * mean
    mask = (colour & smooth).astype(np.uint8) * 255
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return mask


def _skin_faces(skin: np.ndarray, gray: np.ndarray) -> list[tuple[tuple[int, int, int, int], float, str]]:
    """Faces among the skin regions: a compact upright region in which some face-sized window shows the
    face's shading: two eye sockets darker than the nose bridge between them and the cheeks below."""
    h, w = skin.shape
    closed = cv2.morphologyEx(skin, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    # Smaller windows are too often two dark spots on anything skin-coloured (windows in a brick wall).
    min_side = max(16, 0.045 * max(h, w))
    g = cv2.GaussianBlur(gray, (3, 3), 0).astype(np.float32)
    integral = cv2.integral(g)
    raw_skin = cv2.integral((skin > 0).astype(np.uint8))
    out = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if bw < min_side or bh < min_side or area > 0.3 * h * w:
            continue
        # A face joined to its neck and chest: look at the top, face-proportioned part only.
        fh = min(bh, int(round(1.5 * bw)))
        region = labels[y:y + fh, x:x + bw] == i
        if fh < 0.7 * bw or region.mean() < 0.4:
            continue
        mine = cv2.integral((labels == i).astype(np.uint8))
        best = _best_face_window(integral, mine, raw_skin, (x, y, bw, fh), min_side)
        if best is None:
            continue
        box, contrast, _ = best
        bx0, by0, bx1, by1 = box
        # A face is a skin island at eye level: a wall, a reflection or a tan hide goes on to the sides.
        eye_rows = labels[by0 + (by1 - by0) // 4:by0 + (by1 - by0) // 2] == i
        cols = np.flatnonzero(eye_rows.any(0))
        if cols.size and (cols[-1] - cols[0] + 1) > 1.6 * (bx1 - bx0):
            continue
        score = float(np.clip(0.5 + 2.0 * contrast, 0.5, 0.9))
        out.append((box, score, "skin-face"))
    return out


def _box_mean(integral, x0, y0, x1, y1):
    return (integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]) / max(1, (x1 - x0) * (y1 - y0))


def _best_face_window(integral, skin_integral, raw_skin, region, min_side):
    """The best-shaded face window inside a skin region's top part, or None. Returns (box, contrast, skin)."""
    x, y, bw, bh = region
    best = None
    for side in sorted({int(round(bw * f)) for f in (1.0, 0.85, 0.7, 0.6)}):
        if side < min_side:
            continue
        fh = int(round(side * 1.15))
        step = max(1, side // 8)
        for oy in range(y, max(y, y + bh - fh) + 1, step):
            for ox in range(x, max(x, x + bw - side) + 1, step):
                if oy + fh > integral.shape[0] - 1 or ox + side > integral.shape[1] - 1:
                    continue
                # The window must be mostly skin (not a dark hole ringed by skin-coloured bokeh).
                share = _box_mean(skin_integral, ox, oy, ox + side, oy + fh)
                c = _face_shading(integral, raw_skin, ox, oy, side, fh) if share >= 0.55 else None
                if c is not None and (best is None or c * share > best[1] * best[2]):
                    best = ((ox, oy, ox + side, oy + fh), c, share)
    return best


def _face_shading(integral, raw_skin, x, y, w, h):
    """Relative contrast of the eye sockets against the bridge and the cheeks, or None if not face-like."""
    def m(fx0, fy0, fx1, fy1, table=integral):
        return _box_mean(table, x + int(fx0 * w), y + int(fy0 * h), x + max(int(fx1 * w), int(fx0 * w) + 1),
                         y + max(int(fy1 * h), int(fy0 * h) + 1))
    # Eyes are not skin (whites, iris, lashes): a skin-coloured patch with dark stains is no face.
    eye_skin = 0.5 * (m(0.15, 0.3, 0.42, 0.45, raw_skin) + m(0.58, 0.3, 0.85, 0.45, raw_skin))
    cheek_skin = m(0.15, 0.55, 0.85, 0.7, raw_skin)
    # Cheeks and the nose are skin; a face has them whole (brick, reflections, wood have stripes).
    if cheek_skin < 0.7 or m(0.42, 0.45, 0.58, 0.7, raw_skin) < 0.7 or eye_skin > 0.85 * cheek_skin:
        return None
    left, right = m(0.15, 0.28, 0.42, 0.45), m(0.58, 0.28, 0.85, 0.45)
    bridge = m(0.44, 0.28, 0.56, 0.48)
    cheeks = m(0.15, 0.55, 0.85, 0.7)
    ref = min(bridge, cheeks)
    if ref < 30:
        return None
    c_left, c_right = 1 - left / ref, 1 - right / ref
    # Both eyes darker than the bridge and the cheeks (a bright bridge between them: not a dark top half).
    if min(c_left, c_right) < 0.08 or abs(c_left - c_right) > 0.25:
        return None
    # Eyes are dark spots, not the upper ends of dark vertical stripes (windows, reflections, bark).
    under_left, under_right = m(0.15, 0.48, 0.42, 0.6), m(0.58, 0.48, 0.85, 0.6)
    if under_left < 1.08 * left or under_right < 1.08 * right:
        return None
    return float(min(c_left, c_right))


def _fill_holes(region: np.ndarray) -> np.ndarray:
    padded = np.pad(region, 1).astype(np.uint8)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    return (padded | (1 - flood)).astype(bool)[1:-1, 1:-1]


def _vegetation(rgb: np.ndarray) -> np.ndarray:
    """Plant-coloured pixels, bool: chromatic green (dark forest greens too) or yellow-green grass."""
    x = rgb.astype(np.float32) / 255
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    green = (g - np.maximum(r, b)) / (g + 0.05) > 0.06
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    grass = (hsv[..., 0] >= 25) & (hsv[..., 0] <= 45) & (hsv[..., 1] > 60)
    return cv2.medianBlur((green | grass).astype(np.uint8) * 255, 5) > 127


def _ground(small: np.ndarray) -> np.ndarray:
    """Pixels coloured like what the lower frame edges show (a meadow, a track, water, a shore), bool.

    Things stand on a ground that runs out of the picture at its bottom and sides; a subject rarely fills
    those edges (a portrait does, and then the face cue is the one that counts). Colours are compared in
    Lab cells of GROUND_CELL units, a cell next to an edge colour's counting too."""
    h, w = small.shape[:2]
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    cells = (lab // GROUND_CELL).astype(np.int32)
    n = 256 // GROUND_CELL + 1
    band_y, band_x = max(2, h // 12), max(2, w // 16)
    edges = np.concatenate([cells[h - band_y:].reshape(-1, 3), cells[h // 2:, :band_x].reshape(-1, 3),
                            cells[h // 2:, w - band_x:].reshape(-1, 3)])
    seen = np.zeros((n + 2, n + 2, n + 2), bool)
    # A colour counts when several edge pixels have it: one stray pixel of the subject at the edge doesn't.
    counts = np.bincount(np.ravel_multi_index(edges.T, (n, n, n)), minlength=n ** 3).reshape(n, n, n)
    seen[1:-1, 1:-1, 1:-1] = counts >= max(2, edges.shape[0] // 400)
    grown = np.zeros_like(seen)
    for dl in (-1, 0, 1):
        for da in (-1, 0, 1):
            for db in (-1, 0, 1):
                grown[1:-1, 1:-1, 1:-1] |= seen[1 + dl:n + 1 + dl, 1 + da:n + 1 + da, 1 + db:n + 1 + db]
    return grown[cells[..., 0] + 1, cells[..., 1] + 1, cells[..., 2] + 1]


def _islands(rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float, np.ndarray]]:
    """Compact things standing in plants or on the picture's ground: animals, vehicles, bottles, drums, boats.

    A cinemagraph's moving world is mostly vegetation, grass and water; what interrupts it is what it
    keeps still. Two passes: regions that are not plant-coloured and are ringed by plants (a cow, a sheep,
    a car in a meadow), then regions coloured neither like plants nor like the ground at the lower frame
    edges that stand on that ground (horses on a dry prairie, a truck on a track, swans on dark water).
    Either way a region must be compact (not a path or a river), neither tiny nor most of the picture,
    and must not reach the top edge (sky, hills, a tree line).
    Returns (box, score, outline on the detection grid)."""
    h, w = rgb.shape[:2]
    f = min(1.0, ISLAND_LONG_SIDE / max(h, w))
    sh, sw = max(1, round(h * f)), max(1, round(w * f))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if f < 1 else rgb
    veg = _vegetation(small)
    # Fine detail relative to the picture's own: backlit grass tufts and seed heads are busier than a
    # hide, a car body or wool (a hedgehog's spines are not, it is large).
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = np.abs(cv2.Laplacian(cv2.GaussianBlur(gray, (3, 3), 0), cv2.CV_32F))
    detail_ref = max(float(np.percentile(detail, 90)), 1.0)
    found = []
    if veg.mean() >= 0.15:
        found += _island_pass(veg, None, detail / detail_ref)
    ground = veg | _ground(small)
    if ground.mean() >= 0.3:
        found += [(c, s * 0.9) for c, s in _island_pass(ground, ground, detail / detail_ref)]
    out, taken = [], np.zeros((sh, sw), bool)
    for comp, score in sorted(found, key=lambda t: -t[1]):
        if (comp & taken).sum() > 0.5 * comp.sum():
            continue
        taken |= comp
        filled = _fill_holes(_trim(comp)).astype(np.float32)
        shape = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR) if f < 1 else filled
        ys, xs = np.nonzero(comp)
        box = _clip((xs.min() / f, ys.min() / f, (xs.max() + 1) / f, (ys.max() + 1) / f), w, h)
        out.append((box, score, shape))
    return out


def _trim(comp: np.ndarray) -> np.ndarray:
    """The region without the narrow spurs it leaks along (dry grass under an animal, a shadow, a path):
    an opening sized to the region, keeping its large parts, grown back by as much."""
    k = max(3, int(round(0.18 * np.sqrt(comp.sum()))) | 1)
    opened = cv2.morphologyEx(comp.astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n < 2:
        return comp
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.isin(labels, 1 + np.flatnonzero(areas >= 0.05 * areas.max()))
    # Grown back within the region by the opening's size: legs and ears stay, long spurs are cut.
    return comp & cv2.dilate(kept.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)


def _island_pass(surround: np.ndarray, footing: np.ndarray | None, busy_map: np.ndarray):
    """Components of ~surround that are compact and ringed by surround (or sky); with footing, the ring's
    lower half must lie on it (the thing stands on the ground). Returns [(component bool, score)]."""
    sh, sw = surround.shape
    other = cv2.morphologyEx((~surround).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(other, connectivity=8)
    # What reaches the top edge is sky, hills or a tree line: a fine neighbour for a subject.
    rows = labels[: sh // 40 + 1]
    top = np.isin(labels, np.unique(rows[rows > 0]))
    open_surround = surround | top
    total = sh * sw
    out = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        # A band across the picture (a lake, a field, a road) is ground, not a thing on it.
        if area < 0.003 * total or area > 0.4 * total or y <= sh // 40 or bw > 0.7 * sw or bw > 4 * bh:
            continue
        comp = labels == i
        hull = cv2.convexHull(cv2.findNonZero(comp.astype(np.uint8)))
        solidity = area / max(1.0, cv2.contourArea(hull))
        if solidity < 0.45:
            continue
        k = max(3, int(round(0.15 * np.sqrt(area))) | 1)
        ring = cv2.dilate(comp.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)
        ring &= ~comp
        if not ring.any():
            continue
        ringed = float(open_surround[ring].mean())
        if ringed < 0.6:
            continue
        if footing is not None:
            # Standing things are not much wider than tall; a wider region on the ground is more ground.
            if bw > 3 * bh:
                continue
            below = ring.copy()
            below[: y + bh // 2] = False
            if not below.any() or float(footing[below].mean()) < 0.7:
                continue
        share = area / total
        # A sliver at a side edge is mostly a flag, a trunk or a wall cut by the frame.
        if (x == 0 or x + bw >= sw) and share < 0.03:
            continue
        # Inside its outline: a small region is mostly outline, and every outline is busy.
        interior = cv2.erode(comp.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        busy = float(np.median(busy_map[interior if interior.sum() >= 0.3 * area else comp]))
        # Small islands are often a lit tuft or a flower: only calm ones count, and large ones surely.
        if share < 0.03 and (share < 0.004 or busy > 0.35):
            continue
        out.append((comp, float(np.clip(0.55 + 4 * share + 0.5 * (0.4 - busy) + (ringed - 0.6), 0.5, 0.9))))
    return out


def _cascades_available() -> bool:
    return hasattr(cv2, "CascadeClassifier") and os.path.isdir(getattr(getattr(cv2, "data", None),
                                                                        "haarcascades", "") or "")


_CASCADES: dict[str, object] = {}


def _cascade(name: str):
    if name not in _CASCADES:
        path = os.path.join(cv2.data.haarcascades, name)
        c = cv2.CascadeClassifier(path) if os.path.isfile(path) else None
        _CASCADES[name] = c if c is not None and not c.empty() else None
    return _CASCADES[name]


def _cascade_gray(gray):
    """The grey picture the cascades and HOG scan (smaller: their cost grows with the pixel count), its scale."""
    h, w = gray.shape
    f = min(1.0, CASCADE_LONG_SIDE / max(h, w))
    if f < 1:
        gray = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return gray, f


def _cascade_faces(gray, skin, colour):
    if not _cascades_available():
        return []
    h, w = gray.shape
    small, f = _cascade_gray(gray)
    eq = cv2.equalizeHist(small)
    min_side = max(14, int(0.025 * max(small.shape)))
    # A face in a colour picture is skin: scan only around skin (the scans cost most of this cue).
    if colour:
        windows = _skin_windows(cv2.resize(skin, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA),
                                min_side)
    else:
        windows = [(0, 0, small.shape[1], small.shape[0])]
    hits = []
    # Coarser scale steps for the profile cascade: it is the slowest, and run twice.
    for name, flip, step, source in (("haarcascade_frontalface_alt2.xml", False, 1.2, "haar-frontal"),
                                     ("haarcascade_profileface.xml", False, 1.3, "haar-profile"),
                                     ("haarcascade_profileface.xml", True, 1.3, "haar-profile")):
        c = _cascade(name)
        if c is None:
            continue
        for wx0, wy0, wx1, wy1 in windows:
            part = eq[wy0:wy1, wx0:wx1]
            img = np.ascontiguousarray(part[:, ::-1]) if flip else part
            boxes = c.detectMultiScale(img, scaleFactor=step, minNeighbors=4, minSize=(min_side, min_side))
            for bx, by, bw, bh in (boxes if len(boxes) else []):
                if flip:
                    bx = part.shape[1] - bx - bw
                bx, by = bx + wx0, by + wy0
                if bw > 0.7 * min(small.shape):
                    continue
                box = _clip((bx / f, by / f, (bx + bw) / f, (by + bh) / f), w, h)
                # Cascades fire on foliage and fur: a face holds skin-coloured pixels at its centre.
                x0, y0, x1, y1 = _shrink(box, 0.25)
                skin_share = float((skin[y0:y1, x0:x1] > 0).mean()) if x1 > x0 and y1 > y0 else 0.0
                if colour and skin_share < 0.2:
                    continue
                hits.append((box, 0.95 if not colour or skin_share > 0.4 else 0.8, source))
    return hits


def _skin_windows(skin, min_side):
    """Boxes around skin regions, wide enough for the face they may hold (cascade grid)."""
    h, w = skin.shape
    grown = cv2.dilate((skin > 127).astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, min_side // 4))
    n, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for x, y, bw, bh, area in stats[1:]:
        if area < 0.25 * min_side * min_side:
            continue
        side = max(bw, bh, 2 * min_side)
        cx, cy = x + bw / 2, y + bh / 2
        boxes.append(_clip((cx - 0.8 * side, cy - 0.8 * side, cx + 0.8 * side, cy + 0.8 * side), w, h))
    # Overlapping windows merge, so no face is scanned twice or cut in two.
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _inter(boxes[i], boxes[j]) > 0:
                    boxes[i] = _union([boxes[i], boxes[j]])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [b for b in boxes if b[2] - b[0] >= min_side and b[3] - b[1] >= min_side]


def _cascade_bodies(gray, rgb, faces):
    """HOG pedestrians and cat faces that no face already explains. (The Haar upper- and full-body cascades
    are left out: slower than the rest together and, on grass and foliage, mostly wrong.)"""
    h, w = gray.shape
    small, f = _cascade_gray(gray)
    out = []
    if _cascades_available():
        c = _cascade("haarcascade_frontalcatface_extended.xml")
        boxes = c.detectMultiScale(small, scaleFactor=1.3, minNeighbors=5, minSize=(20, 20)) if c else []
        for bx, by, bw, bh in (boxes if len(boxes) else []):
            # The body is around and below the face, which way unknown.
            out.append((_clip(((bx - bw) / f, (by - bh / 3) / f, (bx + 2 * bw) / f, (by + 3 * bh) / f), w, h),
                        "animal", "haar-catface"))
    if hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        rects, weights = hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.15)
        for (bx, by, bw, bh), wt in zip(rects if len(rects) else [], np.ravel(weights) if len(rects) else []):
            if float(wt) > 0.5:
                out.append((_clip((bx / f, by / f, (bx + bw) / f, (by + bh) / f), w, h), "person", "hog"))
    kept = []
    for box, kind, source in out:
        if any(_overlap(box, f) > 0.2 for f in faces):
            continue
        x0, y0, x1, y1 = box
        patch = rgb[y0:y1, x0:x1].astype(np.int16)
        green = float(((patch[..., 1] > patch[..., 0] + 8) & (patch[..., 1] > patch[..., 2] + 8)).mean())
        if green > 0.5:  # a "body" made of leaves
            continue
        kept.append((box, 0.7, source, kind))
    return [(b, s, src, k) for b, s, src, k in _suppress_kinds(kept)]


def _suppress(items, iou):
    items = sorted(items, key=lambda t: -t[1])
    kept = []
    for it in items:
        if all(_iou(it[0], k[0]) < iou and _overlap(it[0], k[0]) < 0.6 for k in kept):
            kept.append(it)
    return kept


def _suppress_kinds(items):
    kept = []
    for it in sorted(items, key=lambda t: -t[1]):
        if all(_iou(it[0], k[0]) < 0.4 for k in kept):
            kept.append(it)
    return kept


def _person_from_face(box, score, source, w, h) -> _Found:
    """Head and a hanging body guessed from a face box, with adult proportions."""
    x0, y0, x1, y1 = box
    fw, fh = x1 - x0, y1 - y0
    cx = 0.5 * (x0 + x1)
    # Forehead and skull, not the hair around them (hair is let move).
    head = _clip((cx - 0.6 * fw, y0 - 0.3 * fh, cx + 0.6 * fw, y1 + 0.15 * fh), w, h)
    neck = _clip((cx - 0.35 * fw, y1 - 0.1 * fh, cx + 0.35 * fw, y1 + 0.5 * fh), w, h)
    torso = _clip((cx - 1.4 * fw, y1 + 0.4 * fh, cx + 1.4 * fw, y1 + 3.2 * fh), w, h)
    legs = _clip((cx - 0.9 * fw, y1 + 3.0 * fh, cx + 0.9 * fw, y1 + 7.0 * fh), w, h)
    likely = [b for b in (head, neck, torso, legs) if b[2] > b[0] and b[3] > b[1]]
    # The chest below the chin is surely the person too: it teaches GrabCut the clothes' colours, which
    # otherwise it may give to the background, the surroundings' share of the crop being larger.
    chest = _clip((cx - 0.4 * fw, y1 + 0.5 * fh, cx + 0.4 * fw, y1 + 1.8 * fh), w, h)
    sure = [b for b in (_shrink(box, 0.15), chest) if b[2] > b[0] and b[3] > b[1]]
    return _Found(Subject("person", _union(likely), score, source), sure, likely,
                  open_below=int(round(y1 + 0.6 * fh)))


def _clip(box, w, h):
    x0, y0, x1, y1 = box
    return (int(max(0, min(w, round(x0)))), int(max(0, min(h, round(y0)))),
            int(max(0, min(w, round(x1)))), int(max(0, min(h, round(y1)))))


def _shrink(box, f):
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * f, (y1 - y0) * f
    return (int(round(x0 + dx)), int(round(y0 + dy)), int(round(x1 - dx)), int(round(y1 - dy)))


def _union(boxes):
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _area(b):
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _inter(a, b):
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _iou(a, b):
    i = _inter(a, b)
    return i / max(1, _area(a) + _area(b) - i)


def _overlap(a, b):
    """Share of the smaller box inside the other."""
    return _inter(a, b) / max(1, min(_area(a), _area(b)))


# ----------------------------------------------------------------------------------------------------------
# Outlines


def _outline(rgb: np.ndarray, found: _Found) -> np.ndarray:
    """The subject's outline on the detection grid, float 0..1, from GrabCut seeded with its regions."""
    if found.shape is not None:
        return found.shape
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = found.subject.box
    # A margin of background around the guess gives GrabCut the surroundings' colours.
    mx, my = max(4, (x1 - x0) // 4), max(4, (y1 - y0) // 4)
    cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    crop = rgb[cy0:cy1, cx0:cx1]
    ch, cw = crop.shape[:2]
    seed = np.full((ch, cw), cv2.GC_BGD, np.uint8)
    seed[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = cv2.GC_PR_BGD
    if found.open_below is not None:
        # Beside and below the shoulders the frame may hold more of the person (arms, a suit filling the
        # frame): there the margin is only probably background, or GrabCut learns the clothes as surroundings.
        seed[max(0, found.open_below - cy0):] = cv2.GC_PR_BGD
    guess = np.zeros((ch, cw), np.uint8)
    for bx0, by0, bx1, by1 in found.likely:
        guess[by0 - cy0:by1 - cy0, bx0 - cx0:bx1 - cx0] = 1
    seed[guess > 0] = cv2.GC_PR_FGD
    for sx0, sy0, sx1, sy1 in found.sure:
        seed[max(0, sy0 - cy0):sy1 - cy0, max(0, sx0 - cx0):sx1 - cx0] = cv2.GC_FGD
    out = np.zeros((h, w), np.float32)
    f = min(1.0, CUT_LONG_SIDE / max(ch, cw))
    sh, sw = max(1, round(ch * f)), max(1, round(cw * f))
    small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA) if f < 1 else crop
    small_seed = cv2.resize(seed, (sw, sh), interpolation=cv2.INTER_NEAREST) if f < 1 else seed.copy()
    cut = guess.astype(np.float32)
    has_fg = np.isin(small_seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    has_bg = np.isin(small_seed, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if min(sh, sw) >= 8 and has_fg and has_bg:
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            # GrabCut seeds its colour models by k-means on OpenCV's RNG: a fixed seed gives the same
            # outline for the same picture (the RNG is per thread, so other callers are not disturbed).
            cv2.setRNGSeed(0x61D)
            cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), small_seed, None, bgd, fgd, CUT_ITERATIONS,
                        cv2.GC_INIT_WITH_MASK)
            fg = np.isin(small_seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
            fg = cv2.resize(fg, (cw, ch), interpolation=cv2.INTER_LINEAR)
            # A cut that kept almost nothing of the guess failed (colours alike): keep the guess, softened.
            kept = (fg * guess).sum() / max(1.0, guess.sum())
            if kept > 0.25:
                cut = fg
        except cv2.error:
            pass
    out[cy0:cy1, cx0:cx1] = cut
    return out
