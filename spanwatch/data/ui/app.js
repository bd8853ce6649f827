// spanwatch web view: draws the picture the page arrived with (#state), then merges what
// /api/live sends (a WebSocket: deltas, or a whole snapshot), no other source.
"use strict";

const sw = (window.spanwatch = { state: null, selected: null, charts: {}, updates: 0, bytes: 0 });

const CHARTS = [
  ["chart-ttft", "TTFT (s)", [["ttft_p50", "p50"], ["ttft_p95", "p95"]]],
  ["chart-tpot", "TPOT (s)", [["tpot_p50", "p50"], ["tpot_p95", "p95"]]],
  ["chart-latency", "latency and queue (s)",
    [["latency_p50", "latency p50"], ["latency_p95", "latency p95"], ["queue_p95", "queue p95"]]],
  ["chart-requests", "requests/s and errors",
    [["request_rate", "requests/s"], ["errors", "errors"]]],
  ["chart-tokens", "tokens/s", [["output_tokens_per_s", "output"], ["input_tokens_per_s", "input"]]],
];
const COLORS = ["#1f5fbf", "#c62828", "#ef8f00", "#2e7d32"];
// series dimensions (alerts are matched to series on them); "dependency" and "node" are empty
// except on dependency calls and workflow nodes, shown together in the table's last label column
const DIMS = ["service", "layer", "operation", "model", "dependency", "node"];
const COLUMNS = ["service", "layer", "operation", "model"];
// chart columns of a series (pipeline/view/dashboard.py COLUMNS) and the sections sent whole
const VALUES = ["ttft_p50", "ttft_p95", "tpot_p50", "tpot_p95", "latency_p50", "latency_p95",
  "queue_p95", "request_rate", "error_rate", "errors", "output_tokens_per_s", "input_tokens_per_s"];
const SECTIONS = ["window", "tokens", "black_holes", "findings", "finding_counts", "anomalies",
  "anomaly_learning", "alerts", "alert_changes", "silences", "reader"];

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e[k] = v;
  }
  for (const kid of kids) {
    if (kid === null || kid === undefined) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function fill(id, nodes, empty) {
  const box = document.getElementById(id);
  box.replaceChildren(...(nodes.length ? nodes : [el("div", { class: "empty" }, empty || "none yet")]));
}

function num(v, unit) {
  if (v === null || v === undefined) return "–";
  if (!unit && Number.isInteger(v)) return v.toLocaleString();
  if (unit === "s") return v >= 1 ? v.toFixed(2) + " s" : (v * 1000).toFixed(0) + " ms";
  if (unit === "%") return (v * 100).toFixed(1) + "%";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString();
  return Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(2);
}

function when(sec) {
  return sec ? new Date(sec * 1000).toLocaleTimeString() : "";
}

function seriesName(labels) {
  return DIMS.map((d) => labels[d]).filter(Boolean).join(" / ");
}

function last(s, col) {
  const xs = s[col] || [];
  for (let i = xs.length - 1; i >= 0; i--) if (xs[i] !== null) return xs[i];
  return null;
}

function traceLink(id) {
  if (!id) return null;
  const tpl = sw.state && sw.state.reader && sw.state.reader.trace_url;
  return tpl ? el("a", { href: tpl.replace("{trace_id}", id), target: "_blank" }, id)
    : el("code", {}, id);
}

// --------------------------------------------------------------------------- alerts

function renderAlerts(st) {
  fill("alerts", st.alerts.filter((a) => a.status !== "inactive").map((a) => {
    const crossed = a.value === null || a.value === undefined ? "" :
      `${a.signal || ""} ${num(a.value, a.unit)} ${a.op || ""} ${num(a.threshold, a.unit)}`;
    return el("div", {
      class: "item alert", "data-status": a.status, "data-alertname": a.alertname,
      onclick: () => drillToAlert(a),
    },
    el("span", { class: `badge ${a.status}` }, a.status),
    el("b", {}, a.alertname), " ",
    el("span", {}, crossed), " ",
    el("span", { class: "when" }, a.status === "resolved" ? `resolved ${when(a.ends_at)}` : `since ${when(a.starts_at)}`),
    a.silenced ? el("span", { class: "badge" }, "silenced") : null,
    el("div", { class: "mono" }, Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ")),
    a.annotations && a.annotations.summary ? el("div", {}, a.annotations.summary) : null,
    a.trace_id ? el("div", {}, "example trace ", traceLink(a.trace_id)) : null);
  }), "no alerts");
  fill("silences", st.silences.map((s) => el("div", { class: "item" },
    el("code", {}, (s.matchers || []).map((m) => typeof m === "string" ? m : JSON.stringify(m)).join(", ")),
    " until ", when(s.ends_at), s.comment ? ` — ${s.comment}` : "")), "no silences");
}

function drillToAlert(alert) {
  const labels = alert.labels || {};
  const match = sw.state.series.find((s) =>
    DIMS.every((d) => !(d in labels) || s.labels[d] === labels[d]) &&
    DIMS.some((d) => d in labels));
  if (match) select(match.id);
  document.getElementById("detail").scrollIntoView({ behavior: "smooth" });
}

// --------------------------------------------------------------------------- series

function renderSeries(st) {
  document.getElementById("window-name").textContent =
    st.window ? `latest closed ${st.window} windows, per series` : "";
  const rows = [...st.series].sort((a, b) => (last(b, "request_rate") || 0) - (last(a, "request_rate") || 0));
  const body = document.querySelector("#series tbody");
  body.replaceChildren(...rows.map((s) => el("tr", {
    class: s.id === sw.selected ? "selected" : "", "data-series": s.id, onclick: () => select(s.id),
  },
  ...COLUMNS.map((d) => el("td", { title: s.labels[d] || "" }, s.labels[d] || "")),
  el("td", { title: s.labels.dependency || s.labels.node || "" },
    s.labels.dependency || s.labels.node || ""),
  el("td", {}, num(last(s, "request_rate"))),
  el("td", {}, num(last(s, "error_rate"), "%")),
  el("td", {}, num(last(s, "ttft_p95"), "s")),
  el("td", {}, num(last(s, "tpot_p95"), "s")),
  el("td", {}, num(last(s, "latency_p95"), "s")),
  el("td", {}, num(last(s, "queue_p95"), "s")),
  el("td", {}, num(last(s, "output_tokens_per_s"))))));
  if (!sw.selected && rows.length) {
    const llm = rows.find((s) => last(s, "ttft_p95") !== null) || rows[0];
    sw.selected = llm.id;
  }
}

function select(id) {
  sw.selected = id;
  render();
}

function chartData(s, cols) {
  return [s.t, ...cols.map(([c]) => s[c])];
}

function renderDetail(st) {
  const s = st.series.find((x) => x.id === sw.selected);
  document.getElementById("detail-name").textContent = s ? seriesName(s.labels) : "none selected";
  for (const [id, title, cols] of CHARTS) {
    const box = document.getElementById(id);
    const data = s ? chartData(s, cols) : [[], ...cols.map(() => [])];
    let chart = sw.charts[id];
    if (!chart) {
      chart = sw.charts[id] = new uPlot({
        title, width: Math.max(box.clientWidth, 300), height: 180, spanGaps: true,
        series: [{}, ...cols.map(([, label], i) => ({ label, stroke: COLORS[i], width: 2 }))],
        axes: [{}, { size: 60 }],
      }, data, box);
    } else {
      chart.setData(data);
    }
  }
  fill("time-share", s ? Object.entries(s.time_share).sort((a, b) => b[1] - a[1]).map(([part, v]) =>
    el("div", { class: "bar" }, el("span", { class: "label" }, part),
      el("span", { class: "fill", style: `width:${Math.round(v * 200)}px` }),
      el("span", {}, num(v, "%")))) : [], "no self time yet");
  // the series' own scores: metrics labels equal to the series' (token entities have none)
  const mine = s ? st.expected.filter((e) => e.labels && DIMS.some((d) => d in e.labels) &&
    DIMS.every((d) => (e.labels[d] || "") === (s.labels[d] || ""))) : [];
  fill("expected", mine.map((e) => el("div", { class: "item" },
    el("b", {}, e.signal), " ", num(e.value, e.unit), " expected ",
    e.expected ? `${num(e.expected.low, e.unit)} – ${num(e.expected.high, e.unit)}` : "(learning)",
    " score ", num(e.score))), "no scores for this series");
  const ex = s ? s.exemplars : {};
  fill("exemplars", [
    ex.slowest_trace_id ? el("div", {}, "slowest ", num(ex.slowest_duration_s, "s"), " ", traceLink(ex.slowest_trace_id)) : null,
    ex.error_trace_id ? el("div", {}, "an error ", traceLink(ex.error_trace_id)) : null,
  ].filter(Boolean), "none");
}

// --------------------------------------------------------------------------- the rest

function renderTokens(st) {
  const tables = Object.entries(st.tokens).map(([kind, rows]) => el("div", {},
    el("h3", {}, `by ${kind}`),
    el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", {}, kind), el("th", {}, "requests"), el("th", {}, "input"),
        el("th", {}, "output"), el("th", {}, "cost"))),
      el("tbody", {}, ...rows.map((r) => el("tr", { "data-entity": `${kind}:${r.id}` },
        el("td", { title: r.id }, r.id || "(none)"), el("td", {}, num(r.requests)),
        el("td", {}, num(r.input_tokens)), el("td", {}, num(r.output_tokens)),
        el("td", {}, Object.entries(r.cost).map(([c, v]) => `${v.toFixed(4)} ${c}`).join(", ") ||
          (r.unpriced_requests ? "unpriced" : "–"))))))));
  fill("tokens", tables);
}

function renderEvents(st) {
  fill("black-holes", st.black_holes.map((b) => {
    const ev = b.evidence || {};
    const rep = ev.repeated_tool;
    return el("div", { class: "item" },
      el("span", { class: "badge high" }, b.budget), el("b", {}, `${b.entity.kind} `), traceLink(b.entity.id),
      ` ${num(b.value)} > ${num(b.limit)}`,
      el("div", {}, `${ev.llm_calls ?? "?"} LLM calls, ${ev.tool_calls ?? "?"} tool calls, ` +
        `${num(ev.tokens)} tokens` + (rep ? `; ${rep.tool} repeated ${rep.in_a_row}× in a row` : "")));
  }), "no black holes");
  fill("finding-counts", Object.entries(st.finding_counts).map(([k, n]) =>
    el("span", { class: "badge " + k.split("/")[1] }, `${k} ${n}`)), "no findings");
  fill("findings", st.findings.map((f) => el("div", { class: "item" },
    el("span", { class: `badge ${f.severity}` }, f.severity), el("b", {}, `${f.kind}/${f.category}`),
    ` ${f.role || ""} ${f.service || ""} ${f.model || ""} `, traceLink(f.trace_id),
    f.excerpt ? el("div", { class: "excerpt mono" }, f.excerpt) : null)));
  fill("anomalies", st.anomalies.map((a) => el("div", { class: "item" },
    el("span", { class: `badge ${a.state === "start" ? "firing" : "resolved"}` }, a.state),
    el("b", {}, a.signal), " ", Object.values(a.labels || {}).join(" / "), " ",
    num(a.value, a.unit), " expected ",
    a.expected ? `${num(a.expected.low, a.unit)} – ${num(a.expected.high, a.unit)}` : "?")),
    learningNote(st.anomaly_learning));
}

// why the anomaly list is empty: detectors score nothing during their grace period
function learningNote(learning) {
  if (!learning || !learning.series) return "no anomalies";
  const when = learning.ready_at_ns ? new Date(learning.ready_at_ns / 1e6).toLocaleTimeString() : "?";
  return `no anomalies yet: ${learning.series} series still learning their normal range ` +
    `(first scores from ${when})`;
}

function render() {
  const st = sw.state;
  if (!st) return;
  document.getElementById("meta").textContent =
    `${st.reader.records.toLocaleString()} records read · ${st.series.length} series · updated ${new Date().toLocaleTimeString()}`;
  renderAlerts(st);
  renderSeries(st);
  renderDetail(st);
  renderTokens(st);
  renderEvents(st);
}

// The page's copy of pipeline/view/dashboard.py apply_delta: windows upserted by start, the
// oldest dropped beyond `points`, removed series and ranges forgotten, sections replaced.
function applyDelta(state, msg) {
  if (!state || msg.kind === "full") return msg;
  const goneSeries = new Set(msg.removed.series);
  const goneExpected = new Set(msg.removed.expected);
  const series = new Map(state.series.filter((s) => !goneSeries.has(s.id)).map((s) => [s.id, s]));
  for (const part of msg.series) {
    const have = series.get(part.id);
    if (!have || "labels" in part) { series.set(part.id, part); continue; }
    part.t.forEach((t, i) => {
      let j = 0;
      while (j < have.t.length && have.t[j] < t) j++;
      const fresh = j === have.t.length || have.t[j] !== t;
      if (fresh) have.t.splice(j, 0, t);
      for (const c of VALUES) {
        if (fresh) have[c].splice(j, 0, part[c][i]); else have[c][j] = part[c][i];
      }
    });
    const extra = have.t.length - state.points;
    if (extra > 0) for (const c of ["t", ...VALUES]) have[c].splice(0, extra);
    for (const k of ["time_share", "ttft_share", "exemplars"]) if (k in part) have[k] = part[k];
  }
  state.series = [...series.values()];
  const expected = new Map(state.expected.filter((e) => !goneExpected.has(e.id)).map((e) => [e.id, e]));
  for (const e of msg.expected) expected.set(e.id, e);
  state.expected = [...expected.values()];
  for (const name of SECTIONS) if (name in msg) state[name] = msg[name];
  state.version = msg.version;
  return state;
}

// follows /api/live (a WebSocket) from the version it has; reconnects the same way
function connect() {
  const conn = document.getElementById("conn");
  const since = sw.state ? `?since=${sw.state.epoch}:${sw.state.version}` : "";
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/api/live${since}`);
  ws.onopen = () => { conn.dataset.state = "live"; conn.textContent = "live"; };
  ws.onclose = () => {
    conn.dataset.state = "down";
    conn.textContent = "reconnecting";
    setTimeout(connect, 2000);
  };
  ws.onmessage = (e) => {
    sw.bytes += e.data.length;
    sw.state = applyDelta(sw.state, JSON.parse(e.data));
    sw.updates += 1;
    render();
  };
}

// the picture the page arrived with: drawn before (and without) the event stream
const initial = document.getElementById("state");
if (initial) {
  sw.state = JSON.parse(initial.textContent);
  render();
  const conn = document.getElementById("conn");
  conn.dataset.state = "loaded";
  conn.textContent = "loaded";
}

// what a browser test reads: points drawn in the selected series' TTFT chart
sw.points = () => {
  const c = sw.charts["chart-ttft"];
  return c ? c.data[0].length : 0;
};

connect();
