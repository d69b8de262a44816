// GID node pack: browser side. Shows Loop Video's report (loop length, seam smoothness) on the node.
import { app } from "../../scripts/app.js";

function formatLoopReport(report) {
  const seam = Number(report.seam_ratio_after);
  const seamText = Number.isFinite(seam) ? seam.toFixed(2) : "n/a";
  const fade = report.crossfade_frames ? `, cross-faded ${report.crossfade_frames} frames` : "";
  return `loop: ${report.loop_frames} frames x ${report.output_frames / report.loop_frames} ` +
    `| wrap step / median step: ${seamText}${fade}`;
}

app.registerExtension({
  name: "GID.LoopReport",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "GID_LoopVideo") return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const report = message?.gid_loop?.[0];
      if (!report) return;
      if (!this.gidReportElement) {
        this.gidReportElement = document.createElement("div");
        this.gidReportElement.style.cssText = "font: 11px sans-serif; opacity: 0.8; padding: 2px 4px;";
        this.addDOMWidget("gid_loop_report", "gid_report", this.gidReportElement, { serialize: false, hideOnZoom: true });
      }
      this.gidReportElement.textContent = formatLoopReport(report);
    };
  },
});
