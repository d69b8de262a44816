// The pull editor on Interactive Dynamics: the picture with its motion overlay; drag from a point and let go.
// The drag is written into the node's `actions` STRING widget (the only state, so saving, copying and API-format
// runs carry it), and a live preview plays the response at once, in the page, from the small modal basis the node
// sent after its last run (physics in dynamics_model.js); the drawing is a backward warp of the picture by each
// action's object modes (the mode shapes in the object's window), summed.
import { coordinatesAt, decodeBasis, modeConstants, objectWindow, parseActions, reachAt } from "./dynamics_model.js";
import { canvasPoint, chain, clearedContext, containRect, loadImage, setWidgetValue, viewURL } from "./media_widgets.js";

const EDITOR_HEIGHT = 260;
const PREVIEW_LONG_SIDE = 256; // the warp runs at this size at most, then is scaled to the node
const HOLD_AFTER_S = 0.6;
const FLICK_SECONDS = 0.25; // an alt+drag of L pixels flicks the point at L / FLICK_SECONDS pixels per second // pause on the settled picture before the preview plays again

export class DynamicsEditor {
  constructor(node, actionsWidget) {
    this.node = node;
    this.actionsWidget = actionsWidget;
    this.basis = null;
    this.picture = null; // ImageData of the picture at the warp size
    this.overlay = null;
    this.drag = null;
    this.playStart = null;
    this.coordinates = null; // per action [M] amounts, for the preview
    this.stats = { frames: 0, drawMs: 0, rafFrames: 0, rafStart: 0, tickMs: 0 };
    this.infoShownAt = 0;

    this.root = document.createElement("div");
    this.root.className = "gid-dynamics-editor";
    this.root.style.cssText = "display:flex;flex-direction:column;gap:3px;width:100%;height:100%;" +
      "box-sizing:border-box;font:11px sans-serif;color:var(--input-text, #ddd);min-height:0;";
    this.canvas = document.createElement("canvas");
    this.canvas.style.cssText = "flex:1 1 auto;min-height:80px;width:100%;touch-action:none;cursor:crosshair;" +
      "border-radius:4px;background:var(--comfy-input-bg, #1b1b1b);";
    this.info = document.createElement("div");
    this.info.className = "gid-dynamics-info";
    this.info.style.cssText = "flex:0 0 auto;opacity:0.85;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;";
    this.root.append(this.canvas, this.info);
    this.warp = document.createElement("canvas");

    for (const type of ["pointerdown", "pointermove", "pointerup", "pointercancel"]) {
      this.canvas.addEventListener(type, (event) => this.onPointer(type, event));
    }
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.canvas);
    this.tick = this.tick.bind(this);
    this.draw();
  }

  dispose() {
    this.resizeObserver.disconnect();
    this.playStart = null;
  }

  widgetValue(name, fallback) {
    const value = this.node.widgets?.find((w) => w.name === name)?.value;
    return value === undefined ? fallback : value;
  }

  constants() {
    const b = this.basis;
    return modeConstants(b, Number(this.widgetValue("damping", b.damping)),
      String(this.widgetValue("damping_model", b.damping_model)), Number(this.widgetValue("stiffness", b.stiffness)));
  }

  async setResult(payload, overlay) {
    this.basis = decodeBasis(payload);
    const long = Math.max(payload.width, payload.height);
    const scale = Math.min(1, PREVIEW_LONG_SIDE / long);
    this.warp.width = Math.max(1, Math.round(payload.width * scale));
    this.warp.height = Math.max(1, Math.round(payload.height * scale));
    const source = payload.picture ?? overlay;
    const [picture, overlayImage] = await Promise.all([source && loadImage(viewURL(source)),
      overlay && loadImage(viewURL(overlay))]);
    this.overlay = overlayImage ?? null;
    if (picture) {
      const ctx = this.warp.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(picture, 0, 0, this.warp.width, this.warp.height);
      this.picture = ctx.getImageData(0, 0, this.warp.width, this.warp.height);
      this.output = ctx.createImageData(this.warp.width, this.warp.height);
      this.pixels = new Uint32Array(this.picture.data.buffer); // one RGBA pixel per element
      this.outPixels = new Uint32Array(this.output.data.buffer);
    }
    this.prepareWarp();
    this.root.dataset.hasBasis = "true";
    this.play();
  }

  readActions() {
    return parseActions(this.actionsWidget.value);
  }

  writeActions(actions) {
    setWidgetValue(this.node, this.actionsWidget, JSON.stringify(actions));
  }

  // Where the picture sits on the canvas (contain), in CSS pixels.
  frame() {
    const b = this.basis;
    return containRect(this.canvas.clientWidth, this.canvas.clientHeight, b ? b.width / b.height : 16 / 9);
  }

  pointAt(event) {
    const f = this.frame();
    const { x, y } = canvasPoint(this.canvas, event);
    return { fx: (x - f.x) / f.w, fy: (y - f.y) / f.h };
  }

  onPointer(type, event) {
    // The editor owns its pointer: neither the canvas nor the Vue node must start a pan or a node drag from here.
    event.stopPropagation();
    if (type === "pointerdown") {
      if (event.button !== 0 || !this.basis) return;
      const p = this.pointAt(event);
      if (p.fx < 0 || p.fx > 1 || p.fy < 0 || p.fy > 1) return;
      event.preventDefault();
      this.canvas.setPointerCapture?.(event.pointerId);
      this.drag = { start: p, now: p, append: event.shiftKey, flick: event.altKey };
      this.playStart = null;
      this.draw();
    } else if (type === "pointermove" && this.drag) {
      this.drag.now = this.pointAt(event);
      this.draw();
    } else if ((type === "pointerup" || type === "pointercancel") && this.drag) {
      const drag = this.drag;
      this.drag = null;
      const pull = this.pullOf(drag);
      if (type === "pointerup" && Math.hypot(pull[0], pull[1]) > 0) {
        const { actions } = this.readActions();
        const at = [round(drag.start.fx, 4), round(drag.start.fy, 4)];
        // Alt+drag flicks: the point starts moving at the drag's length per FLICK_SECONDS.
        const action = drag.flick
          ? { type: "impulse", at, velocity: pull.map((v) => round(v / FLICK_SECONDS, 2)), time_s: 0 }
          : { type: "pull", at, pull, release_s: 0 };
        // Shift adds a pull to the ones there; a plain drag replaces them (and a value being typed is replaced too).
        this.writeActions(drag.append && actions ? [...actions, action] : [action]);
      }
      this.play();
    }
  }

  pullOf(drag) {
    const b = this.basis;
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [round((clamp(drag.now.fx) - drag.start.fx) * b.width, 2), round((clamp(drag.now.fy) - drag.start.fy) * b.height, 2)];
  }

  // Per action, its point and its object's modal coordinates [M] at time t (seconds after frame 0), with the node's
  // current controls.
  coordinatesAt(t, actions, constants) {
    return coordinatesAt(this.basis, actions, t, constants, Number(this.widgetValue("strength", this.basis.strength)));
  }

  // Bilinear weights from the basis grid to every warp pixel, per axis (computed once per run).
  prepareWarp() {
    const b = this.basis;
    this.objectField = null;
    const axis = (cells, size) => {
      const lo = new Int32Array(size);
      const hi = new Int32Array(size);
      const frac = new Float32Array(size);
      for (let i = 0; i < size; i++) {
        const u = Math.min(cells - 1, Math.max(0, ((i + 0.5) * cells) / size - 0.5));
        lo[i] = Math.floor(u);
        hi[i] = Math.min(cells - 1, lo[i] + 1);
        frac[i] = u - lo[i];
      }
      return { lo, hi, frac };
    };
    this.columns = axis(b.grid_width, this.warp.width);
    this.rows = axis(b.grid_height, this.warp.height);
    this.field = new Float32Array(2 * b.grid_width * b.grid_height);
    this.dense = new Float32Array(2 * this.warp.width * this.warp.height);
  }

  // The window of the object at `at` on the basis grid, kept while the same points are shown.
  windowAt(at) {
    const key = `${at[0]},${at[1]}`;
    if (!this.windows || this.windows.basis !== this.basis) this.windows = { basis: this.basis, byPoint: new Map() };
    if (!this.windows.byPoint.has(key)) {
      if (this.windows.byPoint.size > 256) this.windows.byPoint.clear();
      this.windows.byPoint.set(key, objectWindow(this.basis, at[0], at[1]));
    }
    return this.windows.byPoint.get(key);
  }

  // Backward warp of the picture by the actions' object modes: out(p) = picture(p - D(p - D(p))), D in warp pixels,
  // D = sum over actions of window * sum_m x_m shape_m.
  renderWarp(terms) {
    const b = this.basis;
    const started = performance.now();
    const gw = b.grid_width;
    const plane = gw * b.grid_height;
    const field = this.field;
    field.fill(0);
    const own = this.objectField ?? (this.objectField = new Float32Array(2 * plane));
    for (const { at, x } of terms) {
      own.fill(0);
      for (let m = 0; m < b.modes; m++) {
        const c = x[m];
        if (c === 0) continue;
        const shape = b.shapes[m];
        for (let i = 0; i < 2 * plane; i++) own[i] += c * shape[i];
      }
      const window = this.windowAt(at);
      for (let i = 0; i < plane; i++) {
        field[i] += own[i] * window[i];
        field[plane + i] += own[plane + i] * window[i];
      }
    }
    const w = this.warp.width;
    const h = this.warp.height;
    const n = w * h;
    const dense = this.dense;
    const { lo: c0, hi: c1, frac: cf } = this.columns;
    const { lo: r0, hi: r1, frac: rf } = this.rows;
    for (let c = 0; c < 2; c++) {
      const o = c * plane;
      const unit = c === 0 ? w / b.width : h / b.height; // volume pixels -> warp pixels
      for (let py = 0; py < h; py++) {
        const top = o + r0[py] * gw;
        const bottom = o + r1[py] * gw;
        const av = rf[py];
        const row = c * n + py * w;
        for (let px = 0; px < w; px++) {
          const au = cf[px];
          const t = field[top + c0[px]] + (field[top + c1[px]] - field[top + c0[px]]) * au;
          const u = field[bottom + c0[px]] + (field[bottom + c1[px]] - field[bottom + c0[px]]) * au;
          dense[row + px] = (t + (u - t) * av) * unit;
        }
      }
    }
    const src = this.pixels;
    const dst = this.outPixels;
    for (let py = 0; py < h; py++) {
      for (let px = 0; px < w; px++) {
        const i = py * w + px;
        // One fixed-point step inverts the forward displacement well for smooth fields.
        let qx = Math.round(px - dense[i]);
        let qy = Math.round(py - dense[n + i]);
        qx = qx < 0 ? 0 : qx >= w ? w - 1 : qx;
        qy = qy < 0 ? 0 : qy >= h ? h - 1 : qy;
        const j = qy * w + qx;
        let sx = Math.round(px - dense[j]);
        let sy = Math.round(py - dense[n + j]);
        sx = sx < 0 ? 0 : sx >= w ? w - 1 : sx;
        sy = sy < 0 ? 0 : sy >= h ? h - 1 : sy;
        dst[i] = src[sy * w + sx];
      }
    }
    this.warp.getContext("2d").putImageData(this.output, 0, 0);
    this.stats.frames += 1;
    this.stats.drawMs += performance.now() - started;
  }

  play() {
    if (!this.basis) return this.draw();
    const { actions } = this.readActions();
    if (!actions?.length) {
      this.playStart = null;
      return this.draw();
    }
    const wasPlaying = this.playStart !== null;
    this.playStart = performance.now();
    this.stats.rafFrames = 0;
    this.stats.tickMs = 0;
    this.stats.rafStart = this.playStart;
    if (this.root.dataset.playing !== "true") this.root.dataset.playing = "true";
    if (!wasPlaying) requestAnimationFrame(this.tick);
  }

  tick(now) {
    if (this.playStart === null) {
      this.root.dataset.playing = "false";
      return;
    }
    const b = this.basis;
    const duration = Number(this.widgetValue("frames", b.frames)) / Number(this.widgetValue("fps", b.fps));
    let t = (now - this.playStart) / 1000;
    if (t > duration + HOLD_AFTER_S) {
      this.playStart = now;
      t = 0;
    }
    this.showTime = Math.min(t, duration);
    const started = performance.now();
    this.draw();
    this.stats.rafFrames += 1;
    this.stats.tickMs += performance.now() - started;
    requestAnimationFrame(this.tick);
  }

  draw() {
    const f = this.frame();
    const { actions, error } = this.readActions();
    const count = error ? "invalid" : String(actions.length);
    if (this.root.dataset.actions !== count) this.root.dataset.actions = count;
    // While playing, the caption changes only twice a second: each DOM change costs a layout in the Vue renderer.
    const now = performance.now();
    if (this.playStart === null || now - this.infoShownAt > 500) {
      this.infoShownAt = now;
      this.updateInfo(actions, error);
    }
    if (f.width < 2 || f.height < 2) return; // hidden (collapsed node, zoomed out): nothing to draw
    const ctx = clearedContext(this.canvas, f.width, f.height);
    if (!this.basis || !this.picture) {
      ctx.fillStyle = "rgba(255,255,255,0.6)";
      ctx.fillText("Run the graph once, then drag on the picture to pull it", 8, 16);
      return;
    }
    let x = null;
    if (this.drag && !this.drag.flick) {
      const pull = this.pullOf(this.drag);
      x = this.coordinatesAt(0, [{ type: "pull", at: [this.drag.start.fx, this.drag.start.fy], pull }], this.constants());
    } else if (this.playStart !== null) {
      x = this.coordinatesAt(this.showTime ?? 0, actions ?? [], this.constants());
    }
    if (x) {
      this.renderWarp(x);
      ctx.drawImage(this.warp, f.x, f.y, f.w, f.h);
    } else {
      ctx.drawImage(this.overlay ?? this.warp, f.x, f.y, f.w, f.h);
    }
    this.drawArrows(ctx, f, actions ?? []);
  }

  drawArrows(ctx, f, actions) {
    const b = this.basis;
    const vector = (a) => (a?.type === "impulse" && Array.isArray(a.velocity)
      ? a.velocity.map((v) => v * FLICK_SECONDS) : a?.pull);
    const arrows = this.drag ? [{ at: [this.drag.start.fx, this.drag.start.fy], pull: this.pullOf(this.drag) }]
      : actions.filter((a) => Array.isArray(a?.at) && Array.isArray(vector(a))).map((a) => ({ at: a.at, pull: vector(a) }));
    ctx.strokeStyle = "rgba(255,200,60,0.95)";
    ctx.fillStyle = "rgba(255,200,60,0.95)";
    ctx.lineWidth = 2;
    for (const a of arrows) {
      const x0 = f.x + a.at[0] * f.w;
      const y0 = f.y + a.at[1] * f.h;
      const x1 = x0 + (a.pull[0] / b.width) * f.w;
      const y1 = y0 + (a.pull[1] / b.height) * f.h;
      ctx.beginPath();
      ctx.arc(x0, y0, 3, 0, 2 * Math.PI);
      ctx.fill();
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y1);
      ctx.stroke();
    }
  }

  updateInfo(actions, error) {
    if (error) {
      this.info.textContent = `${error}: fix it in the actions field; a drag will replace it`;
      this.info.style.color = "#f88";
      return;
    }
    this.info.style.color = "";
    if (!this.basis) {
      this.info.textContent = `${actions.length} action(s) | run once to pull the picture here`;
      return;
    }
    // How far the point under the drag can go (as modal.ModalBasis.reach), or what the last run limited.
    const reach = this.drag && !this.drag.flick ? reachAt(this.basis, this.drag.start.fx, this.drag.start.fy) : null;
    const pulled = this.drag && !this.drag.flick ? Math.hypot(...this.pullOf(this.drag)) : 0;
    const note = reach !== null && pulled > reach ? `this point can move about ${reach.toFixed(1)} px | `
      : this.basis.notes?.length ? `${this.basis.notes.join("; ")} | ` : "";
    const ms = this.stats.frames ? this.stats.drawMs / this.stats.frames : 0;
    this.info.textContent = `${note}${actions.length} action(s) | drag to pull, alt+drag to flick, shift to add | ` +
      `preview ${this.warp.width}x${this.warp.height}, ${ms.toFixed(1)} ms per frame`;
  }
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function addDynamicsEditor(node) {
  const actionsWidget = node.widgets?.find((w) => w.name === "actions");
  if (!actionsWidget) return null;
  const editor = new DynamicsEditor(node, actionsWidget);
  node.addDOMWidget("gid_dynamics_editor", "gid_dynamics", editor.root, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => EDITOR_HEIGHT,
  });
  chain(actionsWidget, "callback", () => editor.play());
  return editor;
}
