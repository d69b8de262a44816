// Pictures the pack's nodes send after a run: the motion overlay (PNG) and the looping preview (animated WebP).
// Both live in a DOM widget, which the classic LiteGraph canvas overlays on the node and the Vue node renderer
// mounts inside the node, so one code path serves both renderers.
import { api } from "../../../scripts/api.js";

// A stable address of a server file ({filename, subfolder, type}): the same file gives the same URL.
export function fileURL(file) {
  const query = new URLSearchParams({
    filename: file.filename,
    subfolder: file.subfolder ?? "",
    type: file.type ?? "temp",
  });
  return api.apiURL(`/view?${query}`);
}

export function viewURL(file) {
  // Temp file names repeat across server restarts; the run counter keeps the browser from showing a stale one.
  return `${fileURL(file)}&gid_run=${Date.now()}`;
}

export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${url}`));
    img.src = url;
  });
}

/** Set a widget's value as the user would: the Vue renderer keeps its own copy of widget values, and the widget
 * callback is how it hears of the change. */
export function setWidgetValue(node, widget, value) {
  widget.value = value;
  widget.callback?.(value);
  node.setDirtyCanvas?.(true, true);
}

/** Where a picture of `aspect` (width / height) sits inside a width x height box, contained and centred. */
export function containRect(width, height, aspect) {
  const w = Math.min(width, height * aspect);
  const h = w / aspect;
  return { width, height, x: (width - w) / 2, y: (height - h) / 2, w, h };
}

/** A pointer event's position in the canvas's own CSS pixels (the classic renderer draws DOM widgets scaled). */
export function canvasPoint(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  return {
    x: ((event.clientX - rect.left) / Math.max(1, rect.width)) * canvas.clientWidth,
    y: ((event.clientY - rect.top) / Math.max(1, rect.height)) * canvas.clientHeight,
  };
}

/** The 2D context of `canvas` sized to width x height CSS pixels at the screen's pixel ratio, cleared. */
export function clearedContext(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

// Load Image's value names a file of the input folder, as "sub/dir/name.png" with an optional " [output]"-style tag.
function annotatedFile(value) {
  const tagged = /^(.*) \[(input|output|temp)\]$/.exec(value);
  const path = tagged ? tagged[1] : value;
  const cut = path.lastIndexOf("/");
  return {
    filename: path.slice(cut + 1),
    subfolder: cut >= 0 ? path.slice(0, cut) : "",
    type: tagged ? tagged[2] : "input",
  };
}

/** The address of the picture that feeds `inputName` of `node`, or null: through Reroutes to the source node, then
 * Load Image's chosen file, or else the picture that node shows after its last run (node.imgs). Stable while the
 * picture is the same, so callers can compare it to know when to reload. */
export function upstreamPictureURL(node, inputName) {
  const slot = node.findInputSlot?.(inputName) ?? -1;
  let source = slot >= 0 ? node.getInputNode?.(slot) : null;
  for (let hops = 0; source?.type === "Reroute" && hops < 32; hops++) source = source.getInputNode?.(0);
  if (!source) return null;
  const file = source.widgets?.find((w) => w.name === "image" && typeof w.value === "string")?.value;
  if (file) return fileURL(annotatedFile(file));
  return source.imgs?.[source.imageIndex ?? 0]?.src ?? null;
}

const CAPTION_HEIGHT = 18;
const MIN_PICTURE_HEIGHT = 64;

// A picture plus a caption line, added to the node on its first run and reused after that.
export function pictureWidget(node, name, cssClass) {
  const existing = node.widgets?.find((w) => w.name === name);
  if (existing) return existing.gidView;

  const box = document.createElement("div");
  box.className = `gid-picture ${cssClass}`;
  // In the Vue renderer the node can then be dragged by its picture (the classic canvas wraps it in its own box).
  box.style.cssText = "display:flex;flex-direction:column;width:100%;height:100%;pointer-events:none;" +
    "box-sizing:border-box;min-height:0;";
  const img = document.createElement("img");
  img.style.cssText = "flex:1 1 auto;min-height:0;width:100%;object-fit:contain;";
  img.alt = name;
  const caption = document.createElement("div");
  caption.style.cssText = `flex:0 0 ${CAPTION_HEIGHT}px;font:11px sans-serif;opacity:0.8;text-align:center;` +
    "white-space:nowrap;overflow:hidden;text-overflow:ellipsis;";
  box.append(img, caption);

  const view = { box, img, caption, aspect: 1 };
  const widget = node.addDOMWidget(name, "gid_picture", box, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => MIN_PICTURE_HEIGHT + CAPTION_HEIGHT,
  });
  widget.gidView = view;
  img.addEventListener("load", () => {
    view.aspect = img.naturalHeight / Math.max(1, img.naturalWidth);
    growToFit(node, view);
  });
  return view;
}

// Grows the node once so the picture shows at the node's width; never shrinks what the user sized.
function growToFit(node, view) {
  if (!node.graph) return;
  const width = node.size[0];
  const wanted = node.computeSize?.([width, node.size[1]]) ?? node.size;
  const pictureHeight = Math.min(400, Math.max(MIN_PICTURE_HEIGHT, (width - 20) * view.aspect));
  const height = Math.max(node.size[1], wanted[1] + pictureHeight);
  if (height > node.size[1]) node.setSize([width, height]);
  node.setDirtyCanvas?.(true, true);
}

export function showMotionOverlay(node, files) {
  const file = files?.[0];
  if (!file) return;
  const view = pictureWidget(node, "gid_motion_overlay", "gid-motion-overlay");
  view.img.src = viewURL(file);
  const peak = Number(file.peak_px);
  const more = files.length > 1 ? ` (picture 1 of ${files.length})` : "";
  view.caption.textContent = Number.isFinite(peak)
    ? `motion: brighter = moves more, up to ${peak.toFixed(2)} px${more}`
    : `motion: brighter = moves more${more}`;
}

export function showLoopPreview(node, previews) {
  const preview = previews?.[0];
  if (!preview) return;
  const view = pictureWidget(node, "gid_loop_preview", "gid-loop-preview");
  view.img.src = viewURL(preview);
  const fps = Number(preview.fps);
  const played = Number(preview.played_fps);
  const rate = Number.isFinite(played) && Math.abs(played - fps) > 0.01
    ? `${fps.toFixed(2)} fps (plays at ${played.toFixed(2)})`
    : `${fps.toFixed(2)} fps`;
  view.caption.textContent = `loop preview: ${preview.frame_count} frames at ${rate}`;
  view.box.dataset.fps = String(fps);
  view.box.dataset.frameCount = String(preview.frame_count);
}

/** Run `extra` after a method of a node or widget (keeping whatever the method did before: other extensions chain
 * it too). */
export function chain(prototype, method, extra) {
  const original = prototype[method];
  prototype[method] = function () {
    const result = original?.apply(this, arguments);
    extra.apply(this, arguments);
    return result;
  };
}

// Grows a node to hold its widgets and editor; never shrinks what the user sized.
function fitEditor(node, minWidth) {
  const [w, h] = node.computeSize();
  const size = [Math.max(node.size[0], w, minWidth), Math.max(node.size[1], h)];
  if (size[0] !== node.size[0] || size[1] !== node.size[1]) node.setSize(size);
}

/** Give every node of a type an editor made by `create(node)` (an object with draw() and dispose()), stored as
 * node[key]: created with the node, redrawn when a loaded or pasted workflow fills its widgets, disposed with it.
 * A workflow saved before the editor existed (or saved smaller) gets room for it: the Vue node renderer would
 * otherwise squeeze the editor to the saved size. */
export function attachEditor(nodeType, key, create, minWidth) {
  chain(nodeType.prototype, "onNodeCreated", function () {
    this[key] = create(this);
    if (this[key]) fitEditor(this, minWidth);
  });
  chain(nodeType.prototype, "onConfigure", function () {
    if (this[key]) fitEditor(this, minWidth);
    this[key]?.draw();
  });
  chain(nodeType.prototype, "onRemoved", function () {
    this[key]?.dispose();
  });
}
