// GID node pack, browser side, its one extension: the spectrum and dynamics editors and the motion brush on the
// nodes that have their inputs, and a view for each `ui` payload a node sends (nodes/ui_payloads.py builds them all): motion overlays,
// looping previews, loop and clip reports, the editors' data, and loop files (MP4/WebM) shown as video in both node
// renderers. Data arrives the ComfyUI way: each node's `ui` output reaches onExecuted; pictures are temp files
// fetched through /view.
import { app } from "../../../scripts/app.js";
import { attachEditor, chain, showLoopPreview, showMotionOverlay } from "./media_widgets.js";
import { addDynamicsEditor } from "./dynamics_editor.js";
import { addMotionBrush, MIN_WIDTH as BRUSH_MIN_WIDTH } from "./motion_brush.js";
import { addSpectrumEditor } from "./spectrum_editor.js";

// The pack's nodes (their category). Everything below dispatches on what a node declares or sends, never on its name.
const CATEGORY = "GID";
// Editors drawn on a node, attached where the node has the input the editor writes.
const EDITORS = [
  { input: "edit", key: "gidSpectrumEditor", create: addSpectrumEditor, minWidth: 320 },
  { input: "actions", key: "gidDynamicsEditor", create: addDynamicsEditor, minWidth: 360 },
  { input: "motion_brush", key: "gidMotionBrush", create: addMotionBrush, minWidth: BRUSH_MIN_WIDTH },
];
// The Vue node renderer plays a node's output as video only for nodes with a VIDEO input or a previewMediaType of
// "video", otherwise it shows an MP4 as a broken picture.
const VIDEO_FILE = /\.(mp4|webm)$/i;

function formatLoopReport(report) {
  const seam = Number(report.seam_ratio_after);
  const seamText = Number.isFinite(seam) ? seam.toFixed(2) : "n/a";
  const fade = report.crossfade_frames ? `, cross-faded ${report.crossfade_frames} frames` : "";
  return `loop: ${report.loop_frames} frames x ${report.output_frames / report.loop_frames} ` +
    `| wrap step / median step: ${seamText}${fade}`;
}

function formatVideoReport(report) {
  const bins = `${report.num_bins} bins${report.num_bins_auto ? " (automatic)" : ""}`;
  const reliable = Math.round(Number(report.reliable_share) * 100);
  return `motion: ${bins} from ${report.frames_used} frames at ${report.fps} fps | reliable flow ${reliable}%`;
}

function showReport(node, text) {
  if (!node.gidReportElement) {
    node.gidReportElement = document.createElement("div");
    node.gidReportElement.className = "gid-loop-report";
    node.gidReportElement.style.cssText = "font: 11px sans-serif; opacity: 0.8; padding: 2px 4px; pointer-events: none;";
    node.addDOMWidget("gid_loop_report", "gid_report", node.gidReportElement, {
      serialize: false,
      hideOnZoom: true,
      getMinHeight: () => 20,
    });
  }
  node.gidReportElement.textContent = text;
}

// One view per payload key of nodes/ui_payloads.py: view(node, items, message).
const VIEWS = {
  // A dynamics payload's editor draws the motion itself.
  gid_motion: (node, items, message) => message.gid_dynamics || showMotionOverlay(node, items),
  gid_preview: (node, items) => showLoopPreview(node, items),
  gid_mobility: (node, [file]) => {
    if (!file || !node.gidMotionBrush) return;
    node.gidMotionBrush.setMobility(file).catch((err) => {
      node.gidMotionBrush.info.textContent = `mobility overlay unavailable: ${err.message}`;
    });
  },
  gid_loop: (node, [report]) => report && showReport(node, formatLoopReport(report)),
  gid_video_motion: (node, [report]) => report && showReport(node, formatVideoReport(report)),
  gid_spectrum: (node, [spectrum]) => spectrum && node.gidSpectrumEditor?.setSpectrum(spectrum),
  gid_dynamics: (node, [payload], message) => {
    if (!payload || !node.gidDynamicsEditor) return;
    node.gidDynamicsEditor.setResult(payload, message.gid_motion?.[0]).catch((err) => {
      node.gidDynamicsEditor.info.textContent = `preview unavailable: ${err.message}`;
    });
  },
  images: (node, [file]) => {
    if (file?.filename) node.previewMediaType = VIDEO_FILE.test(file.filename) ? "video" : "image";
  },
};

function hasInput(nodeData, name) {
  return Boolean(nodeData.input?.required?.[name] ?? nodeData.input?.optional?.[name]);
}

app.registerExtension({
  name: "GID.NodeViews",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.category !== CATEGORY) return;
    for (const editor of EDITORS) {
      if (hasInput(nodeData, editor.input)) attachEditor(nodeType, editor.key, editor.create, editor.minWidth);
    }
    chain(nodeType.prototype, "onExecuted", function (message) {
      for (const [key, view] of Object.entries(VIEWS)) {
        if (Array.isArray(message?.[key])) view(this, message[key], message);
      }
    });
  },
});
