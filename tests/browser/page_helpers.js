// Injected into the ComfyUI page by the browser tests: small handles on the frontend's public app/api objects.
window.gidTest = (() => {
  const app = () => window.comfyAPI.app.app;
  const api = () => window.comfyAPI.api.api;
  const finished = [];
  const executed = [];
  let listening = false;

  function listen() {
    if (listening) return;
    listening = true;
    for (const type of ["execution_success", "execution_error", "execution_interrupted"]) {
      api().addEventListener(type, (event) => finished.push({ type, detail: event.detail }));
    }
    api().addEventListener("executed", (event) => executed.push(event.detail));
  }

  const nodes = (type) => app().graph._nodes.filter((n) => n.type === type);
  const node = (type) => nodes(type)[0];
  const widget = (n, name) => n.widgets?.find((w) => w.name === name);

  return {
    listen,
    finished,
    executed,
    nodes,
    node,
    widget,
    setWidget(type, name, value) {
      const w = widget(node(type), name);
      if (!w) throw new Error(`${type} has no widget ${name}`);
      w.value = value;
      w.callback?.(value);
    },
    editValue: (id) => widget(app().graph.getNodeById(id), "edit").value,
    async queue() {
      listen();
      const before = finished.length;
      await app().queuePrompt(0, 1);
      return before;
    },
    // The shipped graph made tiny and quick: a small picture, few frames, PNG frames saved instead of the Save
    // Loop files (lossless, and no large animated preview over the canvas).
    shrink({ picture, frames, seed }) {
      const graph = app().graph;
      this.setWidget("LoadImage", "image", picture);
      this.setWidget("GID_MotionTexture", "frames", frames);
      this.setWidget("GID_PredictSpectralVolume", "seed", seed);
      for (const saver of nodes("GID_SaveLoop")) saver.mode = 2;
      const loop = node("GID_LoopVideo");
      const save = window.LiteGraph.createNode("SaveImage");
      save.pos = [loop.pos[0], loop.pos[1] + 400];
      graph.add(save);
      loop.connect(0, save, 0);
      widget(save, "filename_prefix").value = "gid_browser/frame";
      return save.id;
    },
    async promptInputs(nodeId) {
      const { output } = await app().graphToPrompt();
      return output[String(nodeId)]?.inputs;
    },
  };
})();
