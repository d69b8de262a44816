// The spectrum editor on Edit Spectrum: one bar per frequency band. Behind each bar, the band's motion energy from
// the last run (grey: what came in, colour: what went out); the bar itself is the band's gain, dragged up or down.
// The node's `edit` STRING widget is the only state: the editor reads it on every draw and writes gains/magnify back
// into it, keeping every other key, so saving, loading, copying and API-format runs all carry the edit.
import { canvasPoint, chain, clearedContext, setWidgetValue } from "./media_widgets.js";

export const GAIN_MAX = 3;
// The paper's convention (16 bands, 0 to 3 Hz in 0.2 Hz steps) until a run tells the real bands.
const DEFAULT_BANDS = 16;
const DEFAULT_STEP_HZ = 0.2;
const EDITOR_HEIGHT = 190;

function bump(f, centre, width) {
  return Math.exp(-(((f - centre) / width) ** 2));
}

// Each preset maps the band frequencies (Hz) and the current edit to new gains and magnification.
export const PRESETS = {
  calm: (freqs) => ({ gains: freqs.map((f) => (f <= 0.6 ? 0.6 : Math.max(0.15, 0.6 - 0.2 * (f - 0.6)))), magnify: 1 }),
  breezy: (freqs) => ({ gains: freqs.map((f) => 1 + 0.8 * bump(f, 1.2, 0.7)), magnify: 1.2 }),
  "magnify x2": (freqs, edit) => ({ gains: currentGains(edit, freqs.length), magnify: 2 }),
  "low bands only": (freqs) => ({ gains: freqs.map((f) => (f <= 1.0 ? 1 : 0)), magnify: 1 }),
  reset: (freqs) => ({ gains: freqs.map(() => 1), magnify: 1 }),
};

export function parseEdit(text) {
  if (text === undefined || text === null || String(text).trim() === "") return { edit: {}, error: null };
  try {
    const edit = JSON.parse(text);
    if (edit === null || typeof edit !== "object" || Array.isArray(edit)) {
      return { edit: null, error: "the edit value is not a JSON object" };
    }
    return { edit, error: null };
  } catch (err) {
    return { edit: null, error: `the edit value is not valid JSON (${err.message})` };
  }
}

export function currentGains(edit, count) {
  const gains = Array.isArray(edit?.gains) ? edit.gains : [];
  return Array.from({ length: count }, (_, k) => (Number.isFinite(Number(gains[k])) ? Number(gains[k]) : 1));
}

function roundGain(value) {
  return Math.round(value * 1000) / 1000;
}

export class SpectrumEditor {
  constructor(node, editWidget) {
    this.node = node;
    this.editWidget = editWidget;
    this.spectrum = null;
    this.activeBand = -1;
    this.hoverBand = -1;

    this.root = document.createElement("div");
    this.root.className = "gid-spectrum-editor";
    this.root.style.cssText = "display:flex;flex-direction:column;gap:3px;width:100%;height:100%;" +
      "box-sizing:border-box;font:11px sans-serif;color:var(--input-text, #ddd);min-height:0;";

    const toolbar = document.createElement("div");
    toolbar.style.cssText = "display:flex;flex-wrap:wrap;gap:3px;flex:0 0 auto;";
    for (const name of Object.keys(PRESETS)) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = name;
      button.dataset.preset = name;
      button.title = name === "reset" ? "All gains back to 1, magnify 1" : `Preset: ${name}`;
      button.style.cssText = "font:11px sans-serif;padding:1px 6px;border-radius:4px;cursor:pointer;" +
        "border:1px solid var(--border-color, #555);background:var(--comfy-input-bg, #222);color:inherit;";
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        this.applyPreset(name);
      });
      toolbar.append(button);
    }

    this.canvas = document.createElement("canvas");
    this.canvas.style.cssText = "flex:1 1 auto;min-height:60px;width:100%;touch-action:none;cursor:ns-resize;" +
      "border-radius:4px;background:var(--comfy-input-bg, #1b1b1b);";
    this.info = document.createElement("div");
    this.info.className = "gid-spectrum-info";
    this.info.style.cssText = "flex:0 0 auto;opacity:0.85;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;";
    this.root.append(toolbar, this.canvas, this.info);

    for (const type of ["pointerdown", "pointermove", "pointerup", "pointercancel", "pointerleave", "dblclick"]) {
      this.canvas.addEventListener(type, (event) => this.onPointer(type, event));
    }
    // Redraws at the new size whenever the node (and so the widget) is resized, in either renderer.
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.canvas);
  }

  static minHeight() {
    return EDITOR_HEIGHT;
  }

  dispose() {
    this.resizeObserver.disconnect();
  }

  frequencies() {
    if (this.spectrum?.frequencies_hz?.length) return this.spectrum.frequencies_hz.map(Number);
    const { edit } = parseEdit(this.editWidget.value);
    const count = Array.isArray(edit?.gains) && edit.gains.length ? edit.gains.length : DEFAULT_BANDS;
    return Array.from({ length: count }, (_, k) => k * DEFAULT_STEP_HZ);
  }

  setSpectrum(spectrum) {
    this.spectrum = spectrum ?? null;
    this.draw();
  }

  readEdit() {
    return parseEdit(this.editWidget.value);
  }

  writeEdit(changes) {
    const { edit, error } = this.readEdit();
    if (error) return false; // never overwrite a value the user is still typing: nothing is lost silently
    const next = { ...edit, ...changes };
    if (next.gains) next.gains = next.gains.map(roundGain);
    setWidgetValue(this.node, this.editWidget, JSON.stringify(next));
    this.draw();
    return true;
  }

  applyPreset(name) {
    const { edit } = this.readEdit();
    this.writeEdit(PRESETS[name](this.frequencies(), edit ?? {}));
  }

  setGain(band, gain) {
    const { edit } = this.readEdit();
    const gains = currentGains(edit, this.frequencies().length);
    gains[band] = Math.min(GAIN_MAX, Math.max(0, gain));
    this.writeEdit({ gains });
  }

  layout() {
    const width = this.canvas.clientWidth;
    const height = this.canvas.clientHeight;
    const count = this.frequencies().length;
    const pad = { left: 6, right: 6, top: 14, bottom: 14 };
    const plotWidth = Math.max(1, width - pad.left - pad.right);
    const plotHeight = Math.max(1, height - pad.top - pad.bottom);
    return { width, height, count, pad, plotWidth, plotHeight, column: plotWidth / Math.max(1, count) };
  }

  bandAt(event) {
    const { count, pad, plotWidth } = this.layout();
    const x = canvasPoint(this.canvas, event).x - pad.left;
    return Math.min(count - 1, Math.max(0, Math.floor((x / plotWidth) * count)));
  }

  gainAt(event) {
    const { pad, plotHeight } = this.layout();
    const y = canvasPoint(this.canvas, event).y - pad.top;
    return roundGain(GAIN_MAX * (1 - y / plotHeight));
  }

  onPointer(type, event) {
    // The editor owns its pointer: neither the canvas nor the Vue node must start a pan or a node drag from here.
    event.stopPropagation();
    if (type === "pointerdown") {
      if (event.button !== 0) return;
      event.preventDefault();
      this.canvas.setPointerCapture?.(event.pointerId);
      this.activeBand = this.bandAt(event);
      this.setGain(this.activeBand, this.gainAt(event));
    } else if (type === "pointermove") {
      if (this.activeBand >= 0) {
        this.setGain(this.activeBand, this.gainAt(event));
      } else {
        const band = this.bandAt(event);
        if (band !== this.hoverBand) {
          this.hoverBand = band;
          this.draw();
        }
      }
    } else if (type === "dblclick") {
      this.setGain(this.bandAt(event), 1);
    } else {
      if (type === "pointerleave" && this.activeBand >= 0) return; // still captured: the drag goes on
      this.activeBand = -1;
      if (type === "pointerleave") this.hoverBand = -1;
      this.draw();
    }
  }

  draw() {
    const { width, height, count, pad, plotHeight, column } = this.layout();
    const freqs = this.frequencies();
    const { edit, error } = this.readEdit();
    const gains = currentGains(edit ?? {}, count);
    this.root.dataset.bands = String(count);
    this.root.dataset.gains = JSON.stringify(gains);
    this.root.dataset.hasSpectrum = this.spectrum ? "true" : "false";
    this.updateInfo(edit, error, freqs);
    if (width < 2 || height < 2) return; // hidden (collapsed node, zoomed out): nothing to draw

    const ctx = clearedContext(this.canvas, width, height);
    const bottom = pad.top + plotHeight;

    // Energy in the background, normalised to the strongest band in or out.
    const energyIn = this.spectrum?.energy_in?.map(Number) ?? [];
    const energyOut = this.spectrum?.energy_out?.map(Number) ?? [];
    const peak = Math.max(1e-12, ...energyIn.filter(Number.isFinite), ...energyOut.filter(Number.isFinite));
    for (let k = 0; k < count; k++) {
      const x = pad.left + k * column;
      if (Number.isFinite(energyIn[k])) {
        ctx.fillStyle = "rgba(160,160,160,0.35)";
        const h = (energyIn[k] / peak) * plotHeight;
        ctx.fillRect(x + column * 0.1, bottom - h, column * 0.8, h);
      }
      if (Number.isFinite(energyOut[k])) {
        ctx.fillStyle = "rgba(255,140,40,0.45)";
        const h = (energyOut[k] / peak) * plotHeight;
        ctx.fillRect(x + column * 0.3, bottom - h, column * 0.4, h);
      }
    }

    // Gain 1 (unchanged) as a dashed reference line.
    const yOne = bottom - plotHeight / GAIN_MAX;
    ctx.strokeStyle = "rgba(255,255,255,0.35)";
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(pad.left, yOne);
    ctx.lineTo(width - pad.right, yOne);
    ctx.stroke();
    ctx.setLineDash([]);

    // The gain bars: what the user drags.
    for (let k = 0; k < count; k++) {
      const x = pad.left + k * column;
      const shown = Math.min(GAIN_MAX, gains[k]);
      const h = (shown / GAIN_MAX) * plotHeight;
      const highlighted = k === this.activeBand || k === this.hoverBand;
      ctx.fillStyle = highlighted ? "rgba(120,190,255,0.95)" : "rgba(80,150,230,0.75)";
      ctx.fillRect(x + column * 0.2, bottom - h, column * 0.6, Math.max(1, h));
      ctx.fillRect(x + column * 0.05, bottom - h - 1.5, column * 0.9, 3);
      if (gains[k] > GAIN_MAX) {
        ctx.fillStyle = "#fff";
        ctx.fillText("▲", x + column * 0.25, pad.top - 3);
      }
    }

    ctx.fillStyle = "rgba(255,255,255,0.8)";
    ctx.font = "10px sans-serif";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(`${freqs[0]?.toFixed(1) ?? 0} Hz`, pad.left, height - 2);
    const last = `${freqs[count - 1]?.toFixed(1) ?? "?"} Hz`;
    ctx.fillText(last, width - pad.right - ctx.measureText(last).width, height - 2);
    const band = this.activeBand >= 0 ? this.activeBand : this.hoverBand;
    if (band >= 0 && band < count) {
      const label = `${freqs[band].toFixed(2)} Hz  gain ${gains[band].toFixed(2)}`;
      ctx.fillText(label, Math.max(pad.left, (width - ctx.measureText(label).width) / 2), 10);
    }
  }

  updateInfo(edit, error, freqs) {
    if (error) {
      this.info.textContent = `${error}: fix it in the edit field; the editor will not overwrite it`;
      this.info.style.color = "#f88";
      return;
    }
    this.info.style.color = "";
    const magnify = Number.isFinite(Number(edit?.magnify)) ? Number(edit.magnify) : 1;
    const parts = [`${freqs.length} bands`, `magnify x${magnify.toFixed(2)}`];
    // Say when the bars cannot act as drawn: freeze replaces every other edit; a mask limits where they act.
    const masked = this.node.inputs?.some((input) => input.name === "mask" && input.link != null);
    if (edit?.freeze === true) parts.unshift(masked ? "freeze on: gains have no effect" : "freeze on: no motion");
    else if (masked) parts.push("applies inside the mask");
    const total = Number(this.spectrum?.total_amplitude_px);
    parts.push(Number.isFinite(total) ? `total motion ${total.toFixed(2)} px` : "run the graph to see each band's energy");
    this.info.textContent = parts.join(" | ");
  }
}

export function addSpectrumEditor(node) {
  const editWidget = node.widgets?.find((w) => w.name === "edit");
  if (!editWidget) return null;
  const editor = new SpectrumEditor(node, editWidget);
  node.addDOMWidget("gid_spectrum_editor", "gid_spectrum", editor.root, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => SpectrumEditor.minHeight(),
  });
  // A value typed into the edit field (or set by a loaded workflow) shows on the bars at once.
  chain(editWidget, "callback", () => editor.draw());
  return editor;
}
