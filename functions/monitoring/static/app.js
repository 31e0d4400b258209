"use strict";
// The operator dashboard: plain JS over the JSON API, no build step.
// Tenant, tenant key, admin key and API base live in this tab's sessionStorage and travel as
// request headers only, never in a URL. Everything from the API is shown with textContent.

const REFRESH_MS = 5000; // only when the event stream is down
const REDRAW_MS = 300; // events arriving together cause one refresh
const LIVE_POINTS = 300; // per model, for the live chart (its history asks for as many)
const storage = window.sessionStorage;
const state = {
  view: "overview",
  models: [],
  previous: null,
  timer: null,
  stream: null, // the open EventSource (or fetch reader's AbortController)
  pending: null, // the refresh timer a burst of events shares
  live: {}, // model -> [{key, t, prediction, y, error}]: the timeline, then `prediction` events
  drifts: {}, // model -> [{start, end}] drift episodes (end null while open)
};
const $ = (id) => document.getElementById(id);

function session() {
  return {
    tenant: storage.getItem("tenant") || "",
    tenantKey: storage.getItem("tenantKey") || "",
    key: storage.getItem("adminKey") || "",
    base: (storage.getItem("apiBase") || "").replace(/\/+$/, ""),
  };
}

async function api(method, path, { body, admin = false } = {}) {
  const s = session();
  if (!s.tenant) throw new Error("enter a tenant first");
  const headers = { "X-Tenant-ID": s.tenant };
  // the tenant's own key (needed when the service runs with TENANT_AUTH=keys); admin routes
  // take the admin key instead
  if (admin) {
    if (s.key) headers["X-API-Key"] = s.key;
  } else if (s.tenantKey) {
    headers["X-Tenant-Key"] = s.tenantKey;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(s.base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data && data.error;
    throw new Error(error ? `${response.status} ${error.code}: ${error.message}` : `HTTP ${response.status}`);
  }
  return data;
}

const enc = encodeURIComponent;

// ----- rendering helpers ---------------------------------------------------------------

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value.toLocaleString("en");
    return Math.abs(value) >= 1000 ? value.toFixed(1) : value.toPrecision(digits);
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 90) return `${seconds.toFixed(0)} s ago`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function cell(content, className) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  if (className) td.className = className;
  return td;
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren();
  for (const cells of rows) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    tbody.append(tr);
  }
  if (!rows.length && empty) {
    const td = cell(empty);
    td.colSpan = 20;
    td.className = "hint";
    const tr = document.createElement("tr");
    tr.append(td);
    tbody.append(tr);
  }
}

function button(label, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function describe(list, pairs) {
  list.replaceChildren();
  for (const [name, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function say(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.className = isError ? "error" : "";
}

function fillModelSelect(select, names, allowAll) {
  const current = select.value;
  select.replaceChildren();
  if (allowAll) select.append(new Option("all models", ""));
  for (const name of names) select.append(new Option(name, name));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

// ----- overview ------------------------------------------------------------------------

async function loadModels() {
  const overview = await api("GET", "/api/v1/monitoring/overview");
  state.models = overview.models.map((m) => m.name);
  fillModelSelect($("predictions-model"), state.models, true);
  for (const id of ["models-model", "monitoring-model"]) fillModelSelect($(id), state.models, false);
  return overview;
}

async function showOverview() {
  const overview = await loadModels();
  const now = Date.parse(overview.at);
  const before = state.previous;
  const rate = (model, field) => {
    const old = before && before.models[model.name];
    if (!old || now <= before.at) return null;
    return (model[field] - old[field]) / ((now - before.at) / 1000);
  };
  fill(
    $("overview-table").tBodies[0],
    overview.models.map((m) => [
      cell(m.name),
      cell(m.task),
      cell(fmt(m.version), "num"),
      cell(fmt(m.seq), "num"),
      cell(fmt(m.predictions), "num"),
      cell(fmt(rate(m, "predictions"), 3), "num"),
      cell(fmt(m.learned), "num"),
      cell(fmt(rate(m, "learned"), 3), "num"),
      cell(fmt(m.errors), "num"),
      cell(ago(m.last_prediction_at)),
      cell(ago(m.last_learn_at)),
    ]),
    "no models yet for this tenant",
  );
  state.previous = {
    at: now,
    models: Object.fromEntries(overview.models.map((m) => [m.name, m])),
  };
  $("overview-at").textContent = `at ${overview.at}`;
  const total = (field) => overview.models.reduce((sum, m) => sum + m[field], 0);
  $("overview-totals").textContent =
    `${overview.models.length} model(s) · ${fmt(total("predictions"))} predictions · ` +
    `${fmt(total("learned"))} samples learned · ${fmt(total("errors"))} errors`;
}

// ----- prediction explorer ---------------------------------------------------------------

async function showPredictions() {
  if (!state.models.length) await loadModels();
  const model = $("predictions-model").value;
  const limit = $("predictions-limit").value || "50";
  const query = `limit=${enc(limit)}` + (model ? `&model=${enc(model)}` : "");
  const data = await api("GET", `/api/v1/predictions/recent?${query}`);
  fill(
    $("predictions-table").tBodies[0],
    data.predictions.map((p) => [
      cell(p.at),
      cell(p.model),
      cell(fmt(p.version), "num"),
      cell(p.route),
      cell(fmt(p.output.error ? p.output.error : p.output.prediction)),
      cell(fmt(p.actual)),
      cell(fmt(p.prediction_error), "num"),
      cell(fmt(p.latency_ms, 3), "num"),
      cell(p.request_id, "mono"),
      cell(p.input_hash.slice(0, 16), "mono"),
    ]),
    "no predictions recorded",
  );
}

async function clearAudit() {
  if (!session().key) return say("enter the admin key to clear the audit", true);
  if (!window.confirm("Delete every audited prediction of this tenant?")) return;
  const result = await api("DELETE", "/api/v1/admin/audit", { admin: true });
  say(`audit cleared: ${result.deleted} rows`);
  await showPredictions();
}

// ----- model management --------------------------------------------------------------------

async function showModels() {
  if (!state.models.length) await loadModels();
  const name = $("models-model").value;
  if (!name) return fill($("versions-table").tBodies[0], [], "no models yet");
  const data = await api("GET", `/api/v1/models/${enc(name)}/versions`);
  const aliasesOf = {};
  for (const [alias, version] of Object.entries(data.aliases || {})) {
    (aliasesOf[version] = aliasesOf[version] || []).push(alias);
  }
  $("models-summary").textContent =
    `${name}: active version ${fmt(data.active)}, ${data.versions.length} version(s)`;
  fill(
    $("versions-table").tBodies[0],
    data.versions.map((v) => {
      const aliases = document.createElement("span");
      for (const alias of aliasesOf[v.version] || []) {
        aliases.append(`${alias} `);
        aliases.append(button("×", () => run(() => removeAlias(name, alias))));
        aliases.append(" ");
      }
      const action =
        v.version === data.active
          ? document.createTextNode("active")
          : button("Activate", () => run(() => activate(name, v.version)));
      return [
        cell(fmt(v.version), "num"),
        cell(v.created_at || "–"),
        cell(v.source || "–"),
        cell(fmt(v.seq), "num"),
        cell(aliases),
        cell(action),
      ];
    }),
    "no versions",
  );
}

async function activate(name, version) {
  if (!window.confirm(`Restart ${name} from version ${version} on every instance?`)) return;
  await api("POST", `/api/v1/models/${enc(name)}/versions/${enc(version)}/activate`);
  say(`${name}: version ${version} activated`);
  await showModels();
}

async function createVersion() {
  const name = $("models-model").value;
  if (!name) return;
  const meta = await api("POST", `/api/v1/models/${enc(name)}/versions`, { body: {} });
  say(`${name}: version ${meta.version} created at seq ${meta.seq}`);
  await showModels();
}

async function pointAlias(event) {
  event.preventDefault();
  const name = $("models-model").value;
  const alias = $("alias-name").value.trim();
  const version = Number($("alias-version").value);
  await api("PUT", `/api/v1/models/${enc(name)}/aliases/${enc(alias)}`, { body: { version } });
  say(`${name}: ${alias} → version ${version}`);
  await showModels();
}

async function removeAlias(name, alias) {
  await api("DELETE", `/api/v1/models/${enc(name)}/aliases/${enc(alias)}`);
  say(`${name}: alias ${alias} removed`);
  await showModels();
}

// ----- monitoring --------------------------------------------------------------------------

function chart(svg, points, metric) {
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const values = points.map((p) => p[metric]).filter((v) => typeof v === "number");
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "8");
  label.setAttribute("y", "14");
  if (values.length < 2) {
    label.textContent = `${metric || "metric"}: not enough history yet`;
    svg.append(label);
    return;
  }
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const usable = points.filter((p) => typeof p[metric] === "number");
  const xy = usable.map((p, i) => {
    const x = 40 + (540 * i) / (usable.length - 1);
    const y = 185 - (160 * (p[metric] - low)) / span;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", xy.join(" "));
  label.textContent = `${metric}  min ${fmt(low)}  max ${fmt(high)}  (samples ${usable[0].sample}–${usable[usable.length - 1].sample})`;
  svg.append(line, label);
}

async function showMonitoring() {
  if (!state.models.length) await loadModels();
  const name = $("monitoring-model").value;
  if (!name) return say("no models yet for this tenant");
  const base = `/api/v1/models/${enc(name)}`;
  const [metrics, drift, freshness, latency] = await Promise.all([
    api("GET", `${base}/metrics`),
    api("GET", `${base}/drift`),
    api("GET", `${base}/freshness`),
    api("GET", `${base}/latency`),
    loadHistory(name), // the live chart's history: drawn before any new event
  ]);

  const version =
    metrics.versions.find((v) => v.version === metrics.active_version) ||
    metrics.versions[metrics.versions.length - 1];
  const table = $("metrics-table");
  table.tHead.replaceChildren();
  const head = document.createElement("tr");
  for (const title of ["metric", "cumulative", ...metrics.windows.map((w) => `rolling ${w}`)]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.append(th);
  }
  table.tHead.append(head);
  const names = version ? Object.keys(version.cumulative) : [];
  fill(
    table.tBodies[0],
    names.map((metric) => [
      cell(metric),
      cell(fmt(version.cumulative[metric]), "num"),
      ...metrics.windows.map((w) => cell(fmt(version.rolling[String(w)][metric]), "num")),
    ]),
    "no predict_learn yet: metrics come from prequential predictions",
  );
  $("metrics-version").textContent = version
    ? `${name} v${version.version}, ${fmt(version.scored)} scored of ${fmt(version.samples)}`
    : name;
  const picker = $("monitoring-metric");
  const keys = version && version.history.length ? Object.keys(version.history[0]) : [];
  const series = keys.filter((k) => !["sample", "seq", "at"].includes(k));
  const chosen = picker.value;
  picker.replaceChildren(...series.map((k) => new Option(k, k)));
  if (series.includes(chosen)) picker.value = chosen;
  chart($("metrics-chart"), version ? version.history : [], picker.value);
  showClusterSizes(version);
  drawLive(name);

  const flag = $("drift-flag");
  flag.textContent = drift.detected ? "drift detected" : "no drift";
  flag.className = `flag ${drift.detected ? "on" : "off"}`;
  const error = drift.error || {};
  describe($("drift-error"), [
    ["version", fmt(drift.version)],
    ["samples", fmt(drift.samples)],
    ["ADWIN mean error", fmt(error.mean_error)],
    ["ADWIN width", fmt(error.width)],
    ["error rises", fmt(error.rises)],
  ]);
  const features = (drift.features && drift.features.features) || {};
  fill(
    $("drift-features").tBodies[0],
    Object.entries(features).map(([feature, s]) => [
      cell(feature),
      cell(fmt(s.psi, 3), "num"),
      cell(fmt(s.ks, 3), "num"),
      cell(fmt(s.ks_pvalue, 3), "num"),
      cell(s.drift ? "yes" : "no"),
    ]),
    "features are compared once 400 samples are in",
  );
  const episodes = $("drift-episodes");
  episodes.replaceChildren(
    ...(drift.episodes || []).map((e) => {
      const li = document.createElement("li");
      li.textContent = `v${e.version} from seq ${e.started_seq} (${e.signals.join(", ")})${e.open ? ", open" : `, closed at seq ${e.ended_seq}`}`;
      return li;
    }),
  );

  describe($("freshness"), [
    ["seq (samples learned)", fmt(freshness.seq)],
    ["last learn", ago(freshness.last_learn_at)],
    ["last prediction", ago(freshness.last_prediction_at)],
    ["samples since newest version", fmt(freshness.samples_since_last_version)],
    ["newest version", fmt(freshness.newest_version)],
    ["active version", fmt(freshness.active_version)],
    ["active version age", freshness.active_version_created_at ? ago(freshness.active_version_created_at) : "–"],
  ]);

  fill(
    $("latency-table").tBodies[0],
    Object.entries(latency.routes).map(([route, s]) => [
      cell(route),
      cell(fmt(s.count), "num"),
      cell(fmt(s.p50_ms, 3), "num"),
      cell(fmt(s.p95_ms, 3), "num"),
      cell(fmt(s.p99_ms, 3), "num"),
      cell(fmt(s.mean_ms, 3), "num"),
    ]),
    "no calls yet",
  );
}

// A clusterer's version reports how many samples each cluster took (issue 17); other tasks
// have no cluster_sizes and the block stays hidden.
function showClusterSizes(version) {
  const sizes = (version && version.cluster_sizes) || null;
  $("clusters").hidden = !sizes;
  if (!sizes) return;
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  describe(
    $("cluster-sizes"),
    Object.entries(sizes).map(([id, n]) => [`cluster ${id}`, `${fmt(n)} (${fmt((100 * n) / total, 3)} %)`]),
  );
}

// ----- live: the event stream and the chart it feeds ----------------------------------------

// One prediction is one point, whether it came from the timeline or from an event: a
// predict's id, or a predict_learn's seq (unique in the model's log).
function pointKey(p) {
  if (p.prediction_id) return `id:${p.prediction_id}`;
  if (p.route === "predict_learn" && p.seq !== null && p.seq !== undefined) return `seq:${p.seq}`;
  return `at:${p.at}:${p.prediction}`;
}

// The chart's history: the model's recent predictions with their actuals (a delayed label's
// too, once it arrived) and its drift episodes. Newer facts win: a point the timeline knows
// an actual for replaces the one an event drew without it.
async function loadHistory(model) {
  const data = await api("GET", `/api/v1/models/${enc(model)}/timeline?limit=${LIVE_POINTS}`);
  const byKey = new Map((state.live[model] || []).map((p) => [p.key, p]));
  for (const p of data.points) {
    if (typeof p.prediction !== "number") continue;
    const key = pointKey(p);
    const t = Date.parse(p.at);
    byKey.set(key, { key, t, prediction: p.prediction, y: p.actual, error: p.error });
  }
  state.live[model] = [...byKey.values()].sort((a, b) => a.t - b.t).slice(-LIVE_POINTS);
  state.drifts[model] = data.drift_episodes.map((e) => ({
    start: Date.parse(e.started_at),
    end: e.ended_at ? Date.parse(e.ended_at) : null,
  }));
}

const STREAM_TYPES = [
  "model.created", "model.trained", "model.version_created", "model.activated", "model.deleted",
  "drift.detected", "model.degraded", "job.started", "job.succeeded", "job.failed",
  "series.observed", "state.lost", "prediction", "metrics",
];

function onEvent(event) {
  const data = event.data || {};
  const model = data.model || event.subject;
  const at = Date.parse(event.time) || Date.now();
  if (event.type === "prediction" && model && typeof data.prediction === "number") {
    const points = (state.live[model] = state.live[model] || []);
    const key = pointKey({ ...data, at: event.time });
    if (!points.some((p) => p.key === key)) {
      points.push({ key, t: at, prediction: data.prediction, y: data.y, error: data.error });
      if (points.length > LIVE_POINTS) points.splice(0, points.length - LIVE_POINTS);
    }
  } else if (event.type === "drift.detected" && model) {
    const start = Date.parse(data.started_at) || at;
    (state.drifts[model] = state.drifts[model] || []).push({ start, end: null });
  }
  $("stream-state").textContent = `live · last event ${event.type} at ${event.time}`;
  if (state.view === "monitoring" && model === $("monitoring-model").value) drawLive(model);
  // lifecycle and metrics events change the tables: refresh the view once per burst
  if (event.type !== "prediction" && !state.pending) {
    state.pending = setTimeout(() => {
      state.pending = null;
      refresh();
    }, REDRAW_MS);
  }
}

function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
}

// EventSource sends no headers: without a tenant key the tenant goes in the query (the server
// takes it there only when it runs with TENANT_AUTH=none). With a tenant key the stream is
// read with fetch and headers instead, so the key never appears in a URL or an access log.
function openStream() {
  closeStream();
  const s = session();
  if (!s.tenant) return;
  const path = "/api/v1/stream/events";
  if (!s.tenantKey && window.EventSource) {
    const source = new EventSource(`${s.base}${path}?tenant=${enc(s.tenant)}`);
    for (const type of STREAM_TYPES) {
      source.addEventListener(type, (message) => onEvent(JSON.parse(message.data)));
    }
    source.onopen = () => streaming(true);
    source.onerror = () => streaming(false); // EventSource reconnects with Last-Event-ID
    state.stream = source;
  } else {
    state.stream = fetchStream(s, path);
  }
}

function fetchStream(s, path) {
  const abort = new AbortController();
  let lastId = "";
  const read = async () => {
    while (!abort.signal.aborted) {
      try {
        const headers = { "X-Tenant-ID": s.tenant, "X-Tenant-Key": s.tenantKey };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(s.base + path, { headers, signal: abort.signal, cache: "no-store" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        streaming(true);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("id: ")) lastId = line.slice(4);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (data) onEvent(JSON.parse(data));
          }
        }
      } catch (error) {
        if (abort.signal.aborted) return;
      }
      streaming(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  read();
  return { close: () => abort.abort() };
}

// While the stream is up the page waits for events; while it is down it polls as before.
function streaming(up) {
  clearInterval(state.timer);
  state.timer = up ? null : setInterval(refresh, REFRESH_MS);
  $("stream-state").textContent = up ? "live" : "stream down: refreshing every 5 s";
  $("stream-state").className = up ? "live" : "error";
}

// Predictions against actuals over time, the rolling error under them, and drift marks.
function drawLive(model) {
  const svg = $("live-chart");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const points = state.live[model] || [];
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "8");
  label.setAttribute("y", "14");
  svg.append(label);
  if (points.length < 2) {
    label.textContent = "no predictions yet: new ones appear as they are sampled (STREAM_PREDICTION_EVERY)";
    return;
  }
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const x = (t) => 40 + (540 * (t - t0)) / (t1 - t0);
  const values = points.flatMap((p) => [p.prediction, p.y]).filter((v) => typeof v === "number");
  const low = Math.min(...values);
  const span = Math.max(...values) - low || 1;
  const y = (v) => 130 - (115 * (v - low)) / span;
  const recent = [];
  const rolling = points.map((p) => {
    if (typeof p.error === "number") recent.push(p.error);
    if (recent.length > 20) recent.shift();
    return recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null;
  });
  const errors = rolling.filter((v) => v !== null);
  const errorHigh = Math.max(...errors, 1e-12);
  const line = (pairs, className) => {
    const polyline = document.createElementNS(ns, "polyline");
    polyline.setAttribute("points", pairs.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" "));
    polyline.setAttribute("class", className);
    svg.append(polyline);
  };
  line(points.map((p) => [x(p.t), y(p.prediction)]), "prediction");
  line(points.filter((p) => typeof p.y === "number").map((p) => [x(p.t), y(p.y)]), "actual");
  line(
    points.map((p, i) => [x(p.t), 195 - (50 * (rolling[i] || 0)) / errorHigh]),
    "rolling-error",
  );
  // each drift episode: a band from its start to its end (or the chart's end while open),
  // and a mark where it started
  for (const { start, end } of state.drifts[model] || []) {
    const until = end === null ? t1 : end;
    if (until < t0 || start > t1) continue;
    const from = x(Math.max(start, t0));
    const band = document.createElementNS(ns, "rect");
    band.setAttribute("x", from.toFixed(1));
    band.setAttribute("width", Math.max(1, x(Math.min(until, t1)) - from).toFixed(1));
    band.setAttribute("y", "10");
    band.setAttribute("height", "185");
    band.setAttribute("class", "drift-episode");
    svg.prepend(band);
    if (start < t0) continue;
    const mark = document.createElementNS(ns, "line");
    mark.setAttribute("x1", x(start).toFixed(1));
    mark.setAttribute("x2", x(start).toFixed(1));
    mark.setAttribute("y1", "10");
    mark.setAttribute("y2", "195");
    mark.setAttribute("class", "drift");
    svg.append(mark);
  }
  const actuals = points.filter((p) => typeof p.y === "number").length;
  label.textContent = `${model}: prediction (blue) vs actual (green), rolling error (red, 20), drift (orange) · ${points.length} points, ${actuals} actuals`;
}

// ----- navigation --------------------------------------------------------------------------

const VIEWS = {
  overview: showOverview,
  predictions: showPredictions,
  models: showModels,
  monitoring: showMonitoring,
};

async function run(action) {
  try {
    await action();
    if ($("status").className === "error") say("");
  } catch (error) {
    say(error.message, true);
  }
}

function refresh() {
  if (!session().tenant) return say("enter a tenant to start", true);
  return run(VIEWS[state.view]);
}

function show(view) {
  state.view = VIEWS[view] ? view : "overview";
  for (const section of document.querySelectorAll(".view")) {
    section.classList.toggle("active", section.id === `view-${state.view}`);
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === state.view);
  }
  if (!state.stream) {
    clearInterval(state.timer);
    state.timer = setInterval(refresh, REFRESH_MS);
  }
  refresh();
}

// A new tenant (or key) must not see what the last one had on screen.
function forget() {
  state.models = [];
  state.previous = null;
  state.live = {};
  state.drifts = {};
  say("");
  for (const tbody of document.querySelectorAll("tbody")) tbody.replaceChildren();
  for (const id of ["models-summary", "metrics-version", "drift-flag", "overview-totals"]) {
    $(id).textContent = "";
  }
  for (const id of ["drift-error", "freshness", "drift-episodes", "metrics-chart", "live-chart"]) {
    $(id).replaceChildren();
  }
}

function start() {
  const s = session();
  $("tenant").value = s.tenant;
  $("tenant-key").value = s.tenantKey;
  $("admin-key").value = s.key;
  $("api-base").value = s.base;
  $("session").addEventListener("submit", (event) => {
    event.preventDefault();
    storage.setItem("tenant", $("tenant").value.trim());
    storage.setItem("tenantKey", $("tenant-key").value.trim());
    storage.setItem("adminKey", $("admin-key").value);
    storage.setItem("apiBase", $("api-base").value.trim());
    forget();
    openStream();
    refresh();
  });
  $("predictions-refresh").addEventListener("click", () => run(showPredictions));
  $("predictions-model").addEventListener("change", () => run(showPredictions));
  $("audit-clear").addEventListener("click", () => run(clearAudit));
  $("models-model").addEventListener("change", () => run(showModels));
  $("version-create").addEventListener("click", () => run(createVersion));
  $("alias-form").addEventListener("submit", (event) => run(() => pointAlias(event)));
  $("monitoring-model").addEventListener("change", () => {
    drawLive($("monitoring-model").value);
    run(showMonitoring);
  });
  $("monitoring-metric").addEventListener("change", () => run(showMonitoring));
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  openStream();
  show(location.hash.slice(1) || "overview");
}

start();
