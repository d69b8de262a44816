// The physics of the live preview on Interactive Dynamics, mirroring gid_engine/dynamics: the modal basis the node
// sends after a run, the pull as a force answered by the modes of the pulled object and limited to the point's
// reach (modal.py), the exact damped springs with Rayleigh or per-mode damping (simulate.py). Pure functions, no DOM.

const CRITICAL_BAND = 1e-6;
const SWING_SAMPLES = 256; // as simulate.SWING_SAMPLES

export function parseActions(text) {
  if (text === undefined || text === null || String(text).trim() === "") return { actions: [], error: null };
  try {
    const actions = JSON.parse(text);
    if (!Array.isArray(actions)) return { actions: null, error: "the actions value is not a JSON list" };
    return { actions, error: null };
  } catch (err) {
    return { actions: null, error: `the actions value is not valid JSON (${err.message})` };
  }
}

// The modal basis of the last run, decoded: shapes[m] is a Float32Array [2, gh, gw] in pixels of the volume.
export function decodeBasis(payload) {
  const bytes = Uint8Array.from(atob(payload.shapes_int16), (c) => c.charCodeAt(0));
  const raw = new Int16Array(bytes.buffer);
  const size = 2 * payload.grid_width * payload.grid_height;
  const shapes = [];
  for (let m = 0; m < payload.modes; m++) {
    const shape = new Float32Array(size);
    const scale = payload.scales[m];
    for (let i = 0; i < size; i++) shape[i] = raw[m * size + i] * scale;
    shapes.push(shape);
  }
  const reachBytes = Uint8Array.from(atob(payload.reach_int16), (c) => c.charCodeAt(0));
  const reach = Float32Array.from(new Int16Array(reachBytes.buffer), (v) => v * payload.reach_scale);
  return { ...payload, shapes, reach };
}

// The window of the object at (fx, fy) on the basis grid [gh * gw], as modal.object_window.
export function objectWindow(basis, fx, fy) {
  const gw = basis.grid_width;
  const gh = basis.grid_height;
  const sigma = basis.object_radius * Math.max(basis.width, basis.height);
  const window = new Float32Array(gw * gh);
  for (let y = 0; y < gh; y++) {
    const dy = (((y + 0.5) / gh - fy) * basis.height) / sigma;
    for (let x = 0; x < gw; x++) {
      const dx = (((x + 0.5) / gw - fx) * basis.width) / sigma;
      window[y * gw + x] = Math.exp(-0.5 * (dx * dx + dy * dy));
    }
  }
  return window;
}

// Bilinear at fractions of the picture (pixel centres at (i + 0.5) / size), border clamped.
function bilinear(gw, gh, fx, fy, read) {
  const x = Math.min(gw - 1, Math.max(0, fx * gw - 0.5));
  const y = Math.min(gh - 1, Math.max(0, fy * gh - 0.5));
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const x1 = Math.min(gw - 1, x0 + 1);
  const y1 = Math.min(gh - 1, y0 + 1);
  const ax = x - x0;
  const ay = y - y0;
  const top = read(y0 * gw + x0) * (1 - ax) + read(y0 * gw + x1) * ax;
  const bottom = read(y1 * gw + x0) * (1 - ax) + read(y1 * gw + x1) * ax;
  return top * (1 - ay) + bottom * ay;
}

export function reachAt(basis, fx, fy) {
  return bilinear(basis.grid_width, basis.grid_height, fx, fy, (i) => basis.reach[i]);
}

// Mirrors simulate.damping_ratios: Rayleigh fit at the lowest and highest mode, or one ratio for all.
export function modeConstants(basis, damping, model, stiffness) {
  const root = Math.sqrt(stiffness);
  const omegas = basis.omegas.map((w) => w * root);
  if (model === "per_mode") return { omegas, zetas: omegas.map(() => damping) };
  const [lo, hi] = basis.omega_range.map((w) => w * root);
  const alpha = (2 * damping * lo * hi) / (lo + hi);
  const beta = (2 * damping) / (lo + hi);
  return { omegas, zetas: omegas.map((w) => 0.5 * (alpha / w + beta * w)) };
}

// Exact position of x'' + 2 zeta w x' + w^2 x = 0 at t >= 0 from (x0, v0), as simulate.free_response.
export function freeResponse(w, zeta, t, x0, v0) {
  const sigma = zeta * w;
  if (zeta < 1 - CRITICAL_BAND) {
    const wd = w * Math.sqrt(1 - zeta * zeta);
    return Math.exp(-sigma * t) * (x0 * Math.cos(wd * t) + ((v0 + sigma * x0) / wd) * Math.sin(wd * t));
  }
  if (zeta > 1 + CRITICAL_BAND) {
    const root = w * Math.sqrt(zeta * zeta - 1);
    const r1 = -sigma + root;
    const r2 = -sigma - root;
    const a = (v0 - r2 * x0) / (r1 - r2);
    return a * Math.exp(r1 * t) + (x0 - a) * Math.exp(r2 * t);
  }
  return Math.exp(-sigma * t) * (x0 + (v0 + sigma * x0) * t);
}

export function sampleModes(basis, fx, fy) {
  // The mode shapes at the point: [2][M].
  const plane = basis.grid_width * basis.grid_height;
  const rows = [[], []];
  for (const shape of basis.shapes) {
    for (let c = 0; c < 2; c++) {
      rows[c].push(bilinear(basis.grid_width, basis.grid_height, fx, fy, (i) => shape[c * plane + i]));
    }
  }
  return rows;
}

// The force at the point that moves it by (dx, dy), answered by the modes as they move there, as ModalBasis.solve:
// x = Phi^T F, (Phi Phi^T + floor^2 tr(Phi Phi^T) I) F = d.
export function solvePull(basis, fx, fy, dx, dy) {
  const [px, py] = sampleModes(basis, fx, fy);
  let a = 0;
  let b = 0;
  let d = 0;
  for (let m = 0; m < px.length; m++) {
    a += px[m] * px[m];
    b += px[m] * py[m];
    d += py[m] * py[m];
  }
  const floor = basis.direction_floor * basis.direction_floor * (a + d);
  a += floor;
  d += floor;
  const det = a * d - b * b;
  if (!(det > 0)) return px.map(() => 0);
  const gx = (d * dx - b * dy) / det;
  const gy = (-b * dx + a * dy) / det;
  return px.map((_, m) => px[m] * gx + py[m] * gy);
}

// How far the modal amounts move (pull) or swing (flick) the point, as simulate.action_amount / point_swing.
function pointReach(basis, px, py, amount, impulse, constants) {
  const at = (x) => {
    let sx = 0;
    let sy = 0;
    for (let m = 0; m < x.length; m++) {
      sx += px[m] * x[m];
      sy += py[m] * x[m];
    }
    return Math.hypot(sx, sy);
  };
  if (!impulse) return at(amount);
  const period = (2 * Math.PI) / Math.min(...constants.omegas);
  let largest = 0;
  const x = new Float64Array(amount.length);
  for (let i = 0; i < SWING_SAMPLES; i++) {
    const t = (period * i) / (SWING_SAMPLES - 1);
    for (let m = 0; m < amount.length; m++) x[m] = freeResponse(constants.omegas[m], constants.zetas[m], t, 0, amount[m]);
    largest = Math.max(largest, at(x));
  }
  return largest;
}

// An action's modal amounts (coordinates of a pull, velocities of a flick), limited to the point's reach.
export function actionAmount(basis, action, constants, strength) {
  const impulse = action.type === "impulse";
  const vector = impulse ? action.velocity : action.pull;
  const [fx, fy] = action.at;
  const amount = solvePull(basis, fx, fy, strength * vector[0], strength * vector[1]);
  const [px, py] = sampleModes(basis, fx, fy);
  const asked = pointReach(basis, px, py, amount, impulse, constants);
  const reach = reachAt(basis, fx, fy);
  const limit = asked > reach ? reach / asked : 1;
  return { amount: amount.map((v) => v * limit), reach, asked };
}

// Per action, the point (fractions) and the modal coordinates [M] of its object at time t (seconds after frame 0),
// as simulate.action_response: a pull is eased in over drag_seconds before its release, then rings down from rest;
// an impulse starts from rest.
export function coordinatesAt(basis, actions, t, constants, strength) {
  const terms = [];
  for (const action of actions) {
    if (!action || !Array.isArray(action.at)) continue;
    const impulse = action.type === "impulse";
    const vector = impulse ? action.velocity : action.pull;
    if (!Array.isArray(vector)) continue;
    const { amount } = actionAmount(basis, action, constants, strength);
    const t0 = Number((impulse ? action.time_s : action.release_s) ?? 0);
    const x = new Float64Array(basis.modes);
    for (let m = 0; m < basis.modes; m++) {
      const w = constants.omegas[m];
      const zeta = constants.zetas[m];
      if (t >= t0) {
        x[m] = impulse ? freeResponse(w, zeta, t - t0, 0, amount[m]) : freeResponse(w, zeta, t - t0, amount[m], 0);
      } else if (!impulse) {
        const ramp = Math.min(basis.drag_seconds, t0);
        const u = Math.min(1, Math.max(0, (t - (t0 - ramp)) / ramp));
        x[m] = amount[m] * u * u * (3 - 2 * u);
      }
    }
    terms.push({ at: action.at, x });
  }
  return terms;
}
