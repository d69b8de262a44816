// The motion brush on Predict Spectral Volume: on the picture, paint where it moves (green) and where it stays still
// (red) with soft-edged strokes, and draw direction strokes (arrows) that set a region's sway axis and strength.
// The node's `motion_brush` STRING widget is the only state ("" or {"strokes": [...]}, see nodes/model_nodes.py):
// the editor reads it on every draw and writes a whole new value per stroke, so saving, copying and API-format runs
// carry the brush. The picture comes from the node feeding the image input (Load Image's file, or what that node
// shows after a run); after a run the node's mobility overlay can be shown under the strokes.
import {
  canvasPoint, chain, clearedContext, containRect, loadImage, setWidgetValue, upstreamPictureURL, viewURL,
} from "./media_widgets.js";

const WIDGET_NAME = "motion_brush";
const EDITOR_HEIGHT = 300;
const CANVAS_MIN_HEIGHT = 180;
export const MIN_WIDTH = 380;
export const RADIUS_MIN = 0.005;
export const RADIUS_MAX = 0.5;
export const STRENGTH_MAX = { moves: 1, still: 1, direction: 4 };
const TOOLS = {
  moves: { label: "moves", title: "Paint where the picture moves" },
  still: { label: "still", title: "Paint what stays still" },
  direction: { label: "direction", title: "Draw along the way a region sways; strength scales its amplitude" },
  eraser: { label: "eraser", title: "Wipe strokes away where you drag" },
};
const COLORS = { moves: [60, 220, 90], still: [240, 60, 60], direction: [255, 200, 60] };
const LAYER_LONG_SIDE = 320; // painted strokes are drawn at this size at most, then scaled to the node
const POINT_SPACING = 0.25; // of the radius: consecutive points of a stroke at least this far apart
// The node refuses more than these (gid_engine/sources/prior/brush.py): the editor stays inside them.
const MAX_STROKES = 256;
const MAX_POINTS = 4096;
const UNDO_DEPTH = 100;
const PICTURE_POLL_MS = 1000; // Load Image's choice changes without telling the nodes it feeds
const ARROW_SPACING_PX = 36;
const DIGITS = 4;

function round(value, digits = DIGITS) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function clamp(value, lo, hi) {
  return Math.min(hi, Math.max(lo, value));
}

// ---- the widget value: pure functions, no DOM -------------------------------------------------------------------

export function parseBrush(text) {
  if (text === undefined || text === null || String(text).trim() === "") return { strokes: [], error: null };
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || !Array.isArray(value.strokes)) {
      return { strokes: null, error: 'the motion_brush value is not {"strokes": [...]}' };
    }
    return { strokes: value.strokes, error: null };
  } catch (err) {
    return { strokes: null, error: `the motion_brush value is not valid JSON (${err.message})` };
  }
}

export function brushText(strokes) {
  if (!strokes.length) return "";
  return JSON.stringify({
    strokes: strokes.map((s) => ({
      kind: s.kind,
      points: s.points.map(([x, y]) => [round(clamp(x, 0, 1)), round(clamp(y, 0, 1))]),
      radius: round(clamp(s.radius, RADIUS_MIN, RADIUS_MAX)),
      strength: round(clamp(s.strength, 0, STRENGTH_MAX[s.kind]), 3),
    })),
  });
}

// A stroke's weight at `distance` from its centre line: full inside half the radius, a smooth fall to 0 at the radius.
export function softWeight(distance, radius) {
  if (distance <= radius / 2) return 1;
  if (distance >= radius) return 0;
  const t = (radius - distance) / (radius / 2);
  return t * t * (3 - 2 * t);
}

// Direction strokes need two points for a tangent; a lone point of a painted stroke is still a dab.
function keeps(stroke) {
  return stroke.points.length >= (stroke.kind === "direction" ? 2 : 1);
}

/** The strokes with every point whose solid core (half its radius) the eraser's path touches removed, so nothing
 * of them is left at full weight under the eraser; a stroke cut in the middle becomes two. Distances are in units of
 * the picture's longer side (`scale` = [width, height] / longer side). */
export function eraseStrokes(strokes, path, radius, scale) {
  const result = [];
  for (const stroke of strokes) {
    const reach = radius + Number(stroke.radius ?? 0) / 2;
    const near = ([x, y]) => path.some(([ex, ey]) => Math.hypot((x - ex) * scale[0], (y - ey) * scale[1]) < reach);
    let piece = [];
    const flush = () => {
      if (piece.length) result.push({ ...stroke, points: piece });
      piece = [];
    };
    for (const point of stroke.points) {
      if (near(point)) flush();
      else piece.push(point);
    }
    flush();
  }
  return result.filter(keeps);
}

// Each painted stroke's coverage of a width x height grid (pixel centres at (i + 0.5) / size), segment by segment:
// the weight of a polyline is the best weight over its segments, so a stroke can grow one segment at a time.
export function paintSegment(coverage, width, height, a, b, radius) {
  const long = Math.max(width, height);
  const r = radius * long;
  const ax = a[0] * width;
  const ay = a[1] * height;
  const bx = b[0] * width;
  const by = b[1] * height;
  const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - r));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(ax, bx) + r));
  const y0 = Math.max(0, Math.floor(Math.min(ay, by) - r));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(ay, by) + r));
  const dx = bx - ax;
  const dy = by - ay;
  const length2 = dx * dx + dy * dy;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5 - ax;
      const py = y + 0.5 - ay;
      const t = length2 > 0 ? clamp((px * dx + py * dy) / length2, 0, 1) : 0;
      const w = softWeight(Math.hypot(px - t * dx, py - t * dy), r);
      const i = y * width + x;
      if (w > coverage[i]) coverage[i] = w;
    }
  }
  return { x0, y0, x1, y1 };
}

// A painted stroke asks for a mobility (its target: strength for "moves", 1 - strength for "still") over its soft
// footprint; a "still" stroke of strength 0 asks for nothing. As the node reads it (brush.py).
function paintedTarget(stroke) {
  const strength = clamp(Number(stroke.strength), 0, 1);
  return stroke.kind === "moves" ? { target: strength, reach: 1 } : { target: 1 - strength, reach: strength > 0 ? 1 : 0 };
}

const PAINT_OPACITY = 0.6;
const DIRECTION_OPACITY = 0.22;

// The colour of a mobility the brush asks for: red (still) through green (moves).
function mobilityColor(mobility) {
  return COLORS.still.map((c, i) => c + (COLORS.moves[i] - c) * mobility);
}

// ---- the editor ---------------------------------------------------------------------------------------------------

export class MotionBrush {
  constructor(node, brushWidget) {
    this.node = node;
    this.brushWidget = brushWidget;
    this.tool = "moves";
    this.radius = 0.06;
    this.strength = { moves: 1, still: 1, direction: 1.5 };
    this.showMobility = true;
    this.undoStack = [];
    this.picture = null; // the image input's picture (an <img>), or null
    this.pictureURL = null;
    this.mobility = null; // the last run's mobility overlay (an <img>), or null
    this.stroke = null; // the stroke being drawn, or the eraser's path
    this.notice = null; // why the last stroke was not kept
    this.hover = null;
    this.paintedText = null; // the widget value the layer shows
    this.layer = document.createElement("canvas"); // all strokes, composited in order
    this.active = document.createElement("canvas"); // the stroke being drawn

    this.root = document.createElement("div");
    // widget-expands: the Vue node renderer gives the editor the node's free height (as to its own text areas).
    this.root.className = "gid-motion-brush widget-expands";
    this.root.style.cssText = "display:flex;flex-direction:column;gap:3px;width:100%;height:100%;" +
      "box-sizing:border-box;font:11px sans-serif;color:var(--input-text, #ddd);min-height:0;";
    this.root.append(this.makeToolbar(), this.makeSliders());
    // The canvas sits out of the flow: its own pixel size must not widen the node (the Vue renderer sizes a node to
    // its content's minimum width).
    const canvasBox = document.createElement("div");
    canvasBox.style.cssText = `flex:1 1 auto;min-height:${CANVAS_MIN_HEIGHT}px;position:relative;`;
    this.canvas = document.createElement("canvas");
    this.canvas.style.cssText = "position:absolute;inset:0;width:100%;height:100%;touch-action:none;" +
      "cursor:crosshair;border-radius:4px;background:var(--comfy-input-bg, #1b1b1b);";
    canvasBox.append(this.canvas);
    this.info = document.createElement("div");
    this.info.className = "gid-motion-brush-info";
    this.info.style.cssText = "flex:0 0 auto;opacity:0.85;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;";
    this.root.append(canvasBox, this.info);
    // The editor owns its pointer: neither the canvas nor the Vue node must start a pan or a node drag from here.
    this.root.addEventListener("pointerdown", (event) => event.stopPropagation());
    for (const type of ["pointerdown", "pointermove", "pointerup", "pointercancel", "pointerleave"]) {
      this.canvas.addEventListener(type, (event) => this.onPointer(type, event));
    }
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.canvas);
    this.pictureTimer = setInterval(() => this.refreshPicture(), PICTURE_POLL_MS);
    this.refreshPicture();
    this.selectTool(this.tool);
  }

  dispose() {
    this.resizeObserver.disconnect();
    clearInterval(this.pictureTimer);
  }

  makeButton(text, title, onClick) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = text;
    button.title = title;
    button.style.cssText = "font:11px sans-serif;padding:1px 6px;border-radius:4px;cursor:pointer;" +
      "border:1px solid var(--border-color, #555);background:var(--comfy-input-bg, #222);color:inherit;";
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      onClick();
    });
    return button;
  }

  makeToolbar() {
    const bar = document.createElement("div");
    bar.style.cssText = "display:flex;flex-wrap:wrap;gap:3px;flex:0 0 auto;align-items:center;";
    this.toolButtons = {};
    for (const [name, tool] of Object.entries(TOOLS)) {
      const button = this.makeButton(tool.label, tool.title, () => this.selectTool(name));
      button.dataset.tool = name;
      this.toolButtons[name] = button;
      bar.append(button);
    }
    const gap = document.createElement("span");
    gap.style.cssText = "flex:1 1 4px;";
    this.undoButton = this.makeButton("undo", "Take back the last change", () => this.undo());
    this.undoButton.dataset.action = "undo";
    this.clearButton = this.makeButton("clear", "Remove every stroke", () => this.clear());
    this.clearButton.dataset.action = "clear";
    this.mobilityButton = this.makeButton("mobility", "Show or hide the last run's mobility under the strokes",
      () => this.toggleMobility());
    this.mobilityButton.dataset.action = "mobility";
    bar.append(gap, this.undoButton, this.clearButton, this.mobilityButton);
    return bar;
  }

  makeSlider(label, onInput) {
    const box = document.createElement("label");
    box.style.cssText = "display:flex;align-items:center;gap:4px;flex:1 1 120px;min-width:0;";
    const name = document.createElement("span");
    name.textContent = label;
    const input = document.createElement("input");
    input.type = "range";
    input.style.cssText = "flex:1 1 0;width:0;min-width:40px;margin:0;"; // no intrinsic width: it must not widen the node
    const value = document.createElement("span");
    value.style.cssText = "flex:0 0 34px;text-align:right;font-variant-numeric:tabular-nums;";
    input.addEventListener("input", () => onInput(Number(input.value)));
    box.append(name, input, value);
    return { box, input, value };
  }

  makeSliders() {
    const row = document.createElement("div");
    row.style.cssText = "display:flex;gap:8px;flex:0 0 auto;";
    // Size on a log scale: fine control of small brushes, one slider from 0.5% to 50% of the longer side.
    this.sizeSlider = this.makeSlider("size", (v) => {
      this.radius = RADIUS_MIN * (RADIUS_MAX / RADIUS_MIN) ** (v / 100);
      this.updateSliders();
      this.draw();
    });
    Object.assign(this.sizeSlider.input, { min: 0, max: 100, step: 1 });
    this.sizeSlider.input.dataset.control = "size";
    this.strengthSlider = this.makeSlider("strength", (v) => {
      if (this.tool in this.strength) this.strength[this.tool] = v;
      this.updateSliders();
    });
    Object.assign(this.strengthSlider.input, { min: 0, step: 0.05 });
    this.strengthSlider.input.dataset.control = "strength";
    row.append(this.sizeSlider.box, this.strengthSlider.box);
    return row;
  }

  updateSliders() {
    const size = this.sizeSlider;
    size.input.value = String(Math.round((100 * Math.log(this.radius / RADIUS_MIN)) / Math.log(RADIUS_MAX / RADIUS_MIN)));
    size.value.textContent = `${(this.radius * 100).toFixed(1)}%`;
    const strength = this.strengthSlider;
    const painted = this.tool in this.strength;
    strength.input.disabled = !painted;
    strength.box.style.opacity = painted ? "1" : "0.4";
    strength.input.max = String(STRENGTH_MAX[this.tool] ?? 1);
    strength.input.value = String(painted ? this.strength[this.tool] : 0);
    strength.value.textContent = painted
      ? (this.tool === "direction" ? `x${this.strength.direction.toFixed(2)}` : this.strength[this.tool].toFixed(2))
      : "";
    strength.box.title = this.tool === "direction"
      ? "Amplitude multiplier along the stroke (1 = keep the prior's amplitude)"
      : "How fully the stroke overrides the prior's own estimate";
  }

  selectTool(name) {
    this.tool = name;
    for (const [tool, button] of Object.entries(this.toolButtons)) {
      const on = tool === name;
      const color = COLORS[tool] ? `rgb(${COLORS[tool].join(",")})` : "#aaa";
      button.style.background = on ? color : "var(--comfy-input-bg, #222)";
      button.style.color = on ? "#111" : "inherit";
      button.setAttribute("aria-pressed", String(on));
    }
    this.root.dataset.tool = name;
    this.updateSliders();
    this.draw();
  }

  toggleMobility() {
    this.showMobility = !this.showMobility;
    this.draw();
  }

  // ---- the value --------------------------------------------------------------------------------------------------

  readStrokes() {
    return parseBrush(this.brushWidget.value);
  }

  writeStrokes(strokes) {
    const before = String(this.brushWidget.value ?? "");
    const text = brushText(strokes);
    if (text === before) return;
    this.undoStack.push(before);
    if (this.undoStack.length > UNDO_DEPTH) this.undoStack.shift();
    setWidgetValue(this.node, this.brushWidget, text);
    this.draw();
  }

  undo() {
    if (!this.undoStack.length) return;
    setWidgetValue(this.node, this.brushWidget, this.undoStack.pop());
    this.draw();
  }

  clear() {
    // Clear also replaces a value that does not parse: it is the way out of one.
    const before = String(this.brushWidget.value ?? "");
    if (!before) return;
    this.undoStack.push(before);
    setWidgetValue(this.node, this.brushWidget, "");
    this.draw();
  }

  // ---- pictures ---------------------------------------------------------------------------------------------------

  refreshPicture() {
    const url = upstreamPictureURL(this.node, "image");
    if (url === this.pictureURL) return;
    // The last run's mobility belongs to the picture it was made from, not to a newly chosen one.
    if (this.pictureURL !== null && this.mobility) this.setMobility(null);
    this.pictureURL = url;
    if (!url) {
      this.picture = null;
      this.draw();
      return;
    }
    loadImage(url).then((img) => {
      if (this.pictureURL !== url) return; // a newer choice is loading
      this.picture = img;
      this.paintedText = null; // the layer's grid follows the picture's shape
      this.draw();
    }, () => {
      if (this.pictureURL !== url) return;
      this.picture = null;
      this.draw();
    });
  }

  async setMobility(file) {
    const url = this.pictureURL;
    const mobility = file ? await loadImage(viewURL(file)) : null;
    if (url !== this.pictureURL) return; // the picture changed while it loaded
    this.mobility = mobility;
    this.root.dataset.hasMobility = String(!!this.mobility);
    this.draw();
  }

  // The picture's shape: the image input's picture, else the last run's overlay (same shape), else nothing to paint on.
  pictureSize() {
    const img = this.picture ?? this.mobility;
    return img?.naturalWidth ? { width: img.naturalWidth, height: img.naturalHeight } : null;
  }

  // Units of the picture's longer side per unit of x and y fraction.
  sideScale() {
    const { width, height } = this.pictureSize();
    const long = Math.max(width, height);
    return [width / long, height / long];
  }

  frame() {
    const size = this.pictureSize();
    return containRect(this.canvas.clientWidth, this.canvas.clientHeight, size ? size.width / size.height : 16 / 9);
  }

  pointAt(event) {
    const f = this.frame();
    const { x, y } = canvasPoint(this.canvas, event);
    return [(x - f.x) / f.w, (y - f.y) / f.h];
  }

  // ---- pointer ----------------------------------------------------------------------------------------------------

  onPointer(type, event) {
    event.stopPropagation();
    if (type === "pointerdown") {
      if (event.button !== 0 || !this.pictureSize()) return;
      const { strokes, error } = this.readStrokes();
      if (error) return; // never overwrite a value the user is still typing (clear replaces it)
      const p = this.pointAt(event);
      if (p[0] < 0 || p[0] > 1 || p[1] < 0 || p[1] > 1) return;
      event.preventDefault();
      this.canvas.setPointerCapture?.(event.pointerId);
      this.stroke = this.tool === "eraser"
        ? { kind: "eraser", points: [p], strokes }
        : { kind: this.tool, points: [p], radius: this.radius, strength: this.strength[this.tool] };
      this.startActive();
      this.hover = p;
      this.draw();
    } else if (type === "pointermove") {
      this.hover = this.pointAt(event);
      if (this.stroke) this.extendStroke(this.hover.map((v) => clamp(v, 0, 1)));
      this.draw();
    } else if (type === "pointerleave") {
      this.hover = null;
      this.draw();
    } else if (this.stroke) {
      const stroke = this.stroke;
      this.stroke = null;
      if (type === "pointerup") {
        // The stroke ends where the pointer is let go, however close to its last point.
        const end = this.pointAt(event).map((v) => clamp(v, 0, 1));
        const last = stroke.points[stroke.points.length - 1];
        if ((end[0] !== last[0] || end[1] !== last[1]) && stroke.points.length < MAX_POINTS) stroke.points.push(end);
        this.finishStroke(stroke);
      }
      this.draw();
    }
  }

  extendStroke(p) {
    const stroke = this.stroke;
    const last = stroke.points[stroke.points.length - 1];
    const [sx, sy] = this.sideScale();
    const step = Math.hypot((p[0] - last[0]) * sx, (p[1] - last[1]) * sy);
    if (step < POINT_SPACING * this.radius || stroke.points.length >= MAX_POINTS) return;
    stroke.points.push(p);
    if (stroke.kind === "eraser") {
      this.paintedText = null; // the erased strokes are shown live
    } else {
      this.paintActive(last, p);
    }
  }

  finishStroke(stroke) {
    const { strokes } = this.readStrokes();
    const next = stroke.kind === "eraser" ? eraseStrokes(strokes, stroke.points, this.radius, this.sideScale())
      : keeps(stroke) ? [...strokes, stroke] : strokes;
    this.paintedText = null;
    if (next.length > MAX_STROKES) {
      this.notice = `at most ${MAX_STROKES} strokes: erase or clear some first`;
      return;
    }
    this.notice = null;
    this.writeStrokes(next);
  }

  // ---- drawing ----------------------------------------------------------------------------------------------------

  layerSize() {
    const { width, height } = this.pictureSize();
    const scale = Math.min(1, LAYER_LONG_SIDE / Math.max(width, height));
    return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
  }

  // Paints the strokes in order ("later strokes paint over earlier ones") as the node reads them: where painted
  // strokes cover, the colour of the mobility they leave (red still .. green moves); direction strokes as a faint
  // band over that.
  renderLayer(canvas, strokes) {
    const [w, h] = this.layerSize();
    canvas.width = w;
    canvas.height = h;
    const n = w * h;
    const cover = new Float32Array(n);
    const mobility = new Float32Array(n);
    const directionCover = new Float32Array(n);
    const coverage = new Float32Array(n);
    for (const stroke of strokes) {
      if (!Array.isArray(stroke?.points) || !stroke.points.length || !(stroke.kind in COLORS)) continue;
      coverage.fill(0);
      const radius = clamp(Number(stroke.radius) || RADIUS_MIN, RADIUS_MIN, RADIUS_MAX);
      const points = stroke.points;
      for (let k = 0; k < points.length; k++) paintSegment(coverage, w, h, points[Math.max(0, k - 1)], points[k], radius);
      if (stroke.kind === "direction") {
        for (let i = 0; i < n; i++) directionCover[i] += (1 - directionCover[i]) * coverage[i];
        continue;
      }
      const { target, reach } = paintedTarget(stroke);
      for (let i = 0; i < n; i++) {
        const amount = coverage[i] * reach;
        mobility[i] = mobility[i] * (1 - amount) + target * amount;
        cover[i] = cover[i] * (1 - amount) + amount;
      }
    }
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(w, h);
    const band = COLORS.direction;
    for (let i = 0; i < n; i++) {
      const a = cover[i] * PAINT_OPACITY;
      const b = directionCover[i] * DIRECTION_OPACITY;
      const alpha = a + b * (1 - a);
      if (alpha === 0) continue;
      const paint = a > 0 ? mobilityColor(mobility[i] / cover[i]) : band;
      for (let c = 0; c < 3; c++) image.data[4 * i + c] = (band[c] * b + paint[c] * a * (1 - b)) / alpha;
      image.data[4 * i + 3] = alpha * 255;
    }
    ctx.putImageData(image, 0, 0);
  }

  startActive() {
    if (this.stroke.kind === "eraser") return;
    const [w, h] = this.layerSize();
    this.active.width = w;
    this.active.height = h;
    this.activeCoverage = new Float32Array(w * h);
    this.activeImage = this.active.getContext("2d").createImageData(w, h);
    this.paintActive(this.stroke.points[0], this.stroke.points[0]);
  }

  // Grows the active stroke by one segment, touching only the pixels near it.
  paintActive(a, b) {
    const { width: w, height: h } = this.active;
    const box = paintSegment(this.activeCoverage, w, h, a, b, this.stroke.radius);
    const painted = this.stroke.kind !== "direction";
    const color = painted ? mobilityColor(paintedTarget(this.stroke).target) : COLORS.direction;
    const opacity = painted ? PAINT_OPACITY * paintedTarget(this.stroke).reach : DIRECTION_OPACITY;
    const data = this.activeImage.data;
    for (let y = box.y0; y <= box.y1; y++) {
      for (let x = box.x0; x <= box.x1; x++) {
        const i = y * w + x;
        data.set(color, 4 * i);
        data[4 * i + 3] = this.activeCoverage[i] * opacity * 255;
      }
    }
    this.active.getContext("2d").putImageData(this.activeImage, 0, 0, box.x0, box.y0, box.x1 - box.x0 + 1,
      box.y1 - box.y0 + 1);
  }

  draw() {
    const { strokes, error } = this.readStrokes();
    const shown = this.stroke?.kind === "eraser"
      ? eraseStrokes(this.stroke.strokes, this.stroke.points, this.radius, this.sideScale())
      : strokes ?? [];
    this.root.dataset.strokes = error ? "invalid" : String(strokes.length);
    this.root.dataset.hasPicture = String(!!this.picture);
    this.undoButton.disabled = !this.undoStack.length;
    this.mobilityButton.disabled = !this.mobility;
    this.mobilityButton.style.opacity = this.mobility ? "1" : "0.5";
    this.mobilityButton.setAttribute("aria-pressed", String(this.showMobility && !!this.mobility));
    this.mobilityButton.style.textDecoration = this.showMobility ? "none" : "line-through";
    this.updateInfo(strokes, error);

    const f = this.frame();
    if (f.width < 2 || f.height < 2) return; // hidden (collapsed node, zoomed out): nothing to draw
    const ctx = clearedContext(this.canvas, f.width, f.height);
    if (!this.pictureSize()) {
      ctx.fillStyle = "rgba(255,255,255,0.6)";
      ctx.fillText("Connect a picture (Load Image) to paint on it", 8, 16);
      return;
    }
    const layerText = this.stroke?.kind === "eraser" ? null : String(this.brushWidget.value ?? "");
    if (layerText === null || layerText !== this.paintedText) {
      this.renderLayer(this.layer, shown);
      this.paintedText = layerText;
    }
    // The mobility overlay is the picture itself, tinted where it stays still: shown instead of the picture, with
    // the strokes faint over it so the result of the brush can be read.
    const mobilityShown = this.mobility && (this.showMobility || !this.picture);
    ctx.drawImage(mobilityShown ? this.mobility : this.picture, f.x, f.y, f.w, f.h);
    ctx.globalAlpha = mobilityShown ? 0.35 : 1;
    ctx.drawImage(this.layer, f.x, f.y, f.w, f.h);
    ctx.globalAlpha = 1;
    if (this.stroke && this.stroke.kind !== "eraser") ctx.drawImage(this.active, f.x, f.y, f.w, f.h);
    for (const stroke of shown) if (stroke?.kind === "direction") this.drawArrows(ctx, f, stroke.points);
    if (this.stroke?.kind === "direction") this.drawArrows(ctx, f, this.stroke.points);
    this.drawCursor(ctx, f);
  }

  // The stroke's centre line with arrowheads along it: the sway axis follows the local tangent.
  drawArrows(ctx, f, points) {
    if (!Array.isArray(points) || points.length < 2) return;
    const at = points.map(([x, y]) => [f.x + x * f.w, f.y + y * f.h]);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const [width, color] of [[4, "rgba(0,0,0,0.55)"], [2, `rgb(${COLORS.direction.join(",")})`]]) {
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      at.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
      let travelled = 0;
      let next = ARROW_SPACING_PX / 2;
      for (let k = 1; k < at.length; k++) {
        const [x0, y0] = at[k - 1];
        const [x1, y1] = at[k];
        const length = Math.hypot(x1 - x0, y1 - y0);
        while (length > 0 && next <= travelled + length) {
          const u = (next - travelled) / length;
          this.arrowHead(ctx, x0 + u * (x1 - x0), y0 + u * (y1 - y0), Math.atan2(y1 - y0, x1 - x0), width);
          next += ARROW_SPACING_PX;
        }
        travelled += length;
      }
      const [xa, ya] = at[at.length - 2];
      const [xb, yb] = at[at.length - 1];
      this.arrowHead(ctx, xb, yb, Math.atan2(yb - ya, xb - xa), width);
    }
  }

  arrowHead(ctx, x, y, angle, outline) {
    const size = 5 + outline;
    ctx.beginPath();
    ctx.moveTo(x + size * Math.cos(angle), y + size * Math.sin(angle));
    ctx.lineTo(x + size * Math.cos(angle + 2.5), y + size * Math.sin(angle + 2.5));
    ctx.lineTo(x + size * Math.cos(angle - 2.5), y + size * Math.sin(angle - 2.5));
    ctx.closePath();
    ctx.fill();
  }

  // The brush's reach (dashed: where its soft edge starts to fall) at the pointer.
  drawCursor(ctx, f) {
    if (!this.hover) return;
    const { width, height } = this.pictureSize();
    const r = (this.radius * Math.max(width, height) * f.w) / width;
    const x = f.x + this.hover[0] * f.w;
    const y = f.y + this.hover[1] * f.h;
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(255,255,255,0.85)";
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.arc(x, y, r / 2, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  updateInfo(strokes, error) {
    if (error) {
      this.info.textContent = `${error}: fix it in the motion_brush field, or clear`;
      this.info.style.color = "#f88";
      return;
    }
    this.info.style.color = this.notice ? "#fc6" : "";
    const counts = { moves: 0, still: 0, direction: 0 };
    for (const s of strokes) if (s?.kind in counts) counts[s.kind] += 1;
    const parts = [`${counts.moves} moves, ${counts.still} still, ${counts.direction} direction`];
    if (!this.pictureSize()) parts.push("no picture yet");
    else if (!this.mobility) parts.push("run once to see the mobility");
    else parts.push(this.showMobility ? "last run's mobility: colour moves, grey stays still" : "mobility hidden");
    if (this.notice) parts.unshift(this.notice);
    this.info.textContent = parts.join(" | ");
  }
}

export function addMotionBrush(node) {
  const brushWidget = node.widgets?.find((w) => w.name === WIDGET_NAME);
  if (!brushWidget) return null;
  const editor = new MotionBrush(node, brushWidget);
  node.addDOMWidget("gid_motion_brush", "gid_motion_brush", editor.root, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => EDITOR_HEIGHT,
  });
  // A new link into the image input brings a new picture.
  chain(node, "onConnectionsChange", function () {
    editor.refreshPicture();
  });
  // A value typed into the field (or set by a loaded workflow) shows at once.
  chain(brushWidget, "callback", () => editor.draw());
  return editor;
}
