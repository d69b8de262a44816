// GID node pack, browser side: the spectrum editor on Edit Spectrum, the motion overlay after motion-making nodes,
// the looping preview on the render nodes, the loop report of Loop Video and Render Loop File, Video To Spectral
// Volume's report (bins used), and loop files (MP4/WebM) shown as video in both node renderers. Data arrives the
// ComfyUI way: each node's `ui` output reaches onExecuted; pictures are temp files fetched through /view.
import { app } from "../../../scripts/app.js";
import { attachEditor, chain, showLoopPreview, showMotionOverlay } from "./media_widgets.js";
import { addSpectrumEditor } from "./spectrum_editor.js";

const OVERLAY_NODES = new Set(["GID_PredictSpectralVolume", "GID_VideoToSpectralVolume", "GID_EditSpectrum"]);
const PREVIEW_NODES = new Set(["GID_SoftmaxSplatRender", "GID_LoopVideo"]);
const EDITOR_NODE = "GID_EditSpectrum";
const REPORT_NODES = new Set(["GID_LoopVideo", "GID_RenderLoopFile"]);
const VIDEO_NODE = "GID_VideoToSpectralVolume";
// Nodes that write a loop file and show it; the Vue node renderer plays a node's output as video only for nodes
// with a VIDEO input or a previewMediaType of "video", otherwise it shows an MP4 as a broken picture.
const FILE_NODES = new Set(["GID_SaveLoop", "GID_RenderLoopFile"]);
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

app.registerExtension({
  name: "GID.NodeViews",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const name = nodeData.name;
    if (!OVERLAY_NODES.has(name) && !PREVIEW_NODES.has(name) && !REPORT_NODES.has(name) && !FILE_NODES.has(name) &&
        name !== VIDEO_NODE) return;

    if (name === EDITOR_NODE) attachEditor(nodeType, "gidSpectrumEditor", addSpectrumEditor, 320);

    chain(nodeType.prototype, "onExecuted", function (message) {
      const file = message?.images?.[0]?.filename;
      if (FILE_NODES.has(name) && file) this.previewMediaType = VIDEO_FILE.test(file) ? "video" : "image";
      if (name === EDITOR_NODE && message?.gid_spectrum?.[0]) this.gidSpectrumEditor?.setSpectrum(message.gid_spectrum[0]);
      if (OVERLAY_NODES.has(name) && message?.gid_motion) showMotionOverlay(this, message.gid_motion);
      if (PREVIEW_NODES.has(name) && message?.gid_preview) showLoopPreview(this, message.gid_preview);
      if (REPORT_NODES.has(name) && message?.gid_loop?.[0]) showReport(this, formatLoopReport(message.gid_loop[0]));
      if (name === VIDEO_NODE && message?.gid_video_motion?.[0]) {
        showReport(this, formatVideoReport(message.gid_video_motion[0]));
      }
    });
  },
});
