// GID node pack, browser side: the spectrum editor on Edit Spectrum, the motion overlay after motion-making nodes,
// the looping preview on the render nodes, and Loop Video's report. Data arrives the ComfyUI way: each node's
// `ui` output reaches onExecuted; pictures are temp files fetched through /view.
import { app } from "../../../scripts/app.js";
import { showLoopPreview, showMotionOverlay } from "./media_widgets.js";
import { addSpectrumEditor } from "./spectrum_editor.js";

const OVERLAY_NODES = new Set(["GID_PredictSpectralVolume", "GID_VideoToSpectralVolume", "GID_EditSpectrum"]);
const PREVIEW_NODES = new Set(["GID_SoftmaxSplatRender", "GID_LoopVideo"]);
const EDITOR_NODE = "GID_EditSpectrum";
const REPORT_NODE = "GID_LoopVideo";

function formatLoopReport(report) {
  const seam = Number(report.seam_ratio_after);
  const seamText = Number.isFinite(seam) ? seam.toFixed(2) : "n/a";
  const fade = report.crossfade_frames ? `, cross-faded ${report.crossfade_frames} frames` : "";
  return `loop: ${report.loop_frames} frames x ${report.output_frames / report.loop_frames} ` +
    `| wrap step / median step: ${seamText}${fade}`;
}

function showLoopReport(node, report) {
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
  node.gidReportElement.textContent = formatLoopReport(report);
}

function chain(prototype, method, extra) {
  const original = prototype[method];
  prototype[method] = function () {
    const result = original?.apply(this, arguments);
    extra.apply(this, arguments);
    return result;
  };
}

app.registerExtension({
  name: "GID.NodeViews",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const name = nodeData.name;
    if (!OVERLAY_NODES.has(name) && !PREVIEW_NODES.has(name) && name !== REPORT_NODE) return;

    if (name === EDITOR_NODE) {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.gidSpectrumEditor = addSpectrumEditor(this);
        if (this.gidSpectrumEditor) {
          const [w, h] = this.computeSize();
          this.setSize([Math.max(this.size[0], w, 320), Math.max(this.size[1], h)]);
        }
      });
      // Values of a loaded or pasted workflow land in the widgets after creation: show them.
      chain(nodeType.prototype, "onConfigure", function () {
        this.gidSpectrumEditor?.draw();
      });
      chain(nodeType.prototype, "onRemoved", function () {
        this.gidSpectrumEditor?.dispose();
      });
    }

    chain(nodeType.prototype, "onExecuted", function (message) {
      if (name === EDITOR_NODE && message?.gid_spectrum?.[0]) this.gidSpectrumEditor?.setSpectrum(message.gid_spectrum[0]);
      if (OVERLAY_NODES.has(name) && message?.gid_motion) showMotionOverlay(this, message.gid_motion);
      if (PREVIEW_NODES.has(name) && message?.gid_preview) showLoopPreview(this, message.gid_preview);
      if (name === REPORT_NODE && message?.gid_loop?.[0]) showLoopReport(this, message.gid_loop[0]);
    });
  },
});
