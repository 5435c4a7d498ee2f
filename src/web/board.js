// The supervisors' board: every call in memory, live from the board stream
// (/api/v1/board/events), and one call's transcript, sentiment and transfer
// button. The admin token is kept in sessionStorage (this tab only) and sent
// as a header, so it never appears in a URL or a log.
"use strict";

const KEY = "ivrx-admin-token";
const $ = (id) => document.getElementById(id);
const rows = new Map(); // conversation_id -> row
const latency = []; // ms from the server taking in a change to it being shown here (last 1000)
let streamAbort = null;
let view = null; // the open call, if any

function token() { return sessionStorage.getItem(KEY); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

class AuthError extends Error {}

// Server-sent events over fetch (EventSource cannot send a header).
async function stream(path, onEvent, signal) {
  const res = await fetch(path, {
    headers: { Authorization: "Bearer " + token(), Accept: "text/event-stream" },
    cache: "no-store",
    signal,
  });
  if (res.status === 401) throw new AuthError("The admin token is wrong.");
  if (!res.ok) throw new Error("the server answered " + res.status);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  // A read brings what has arrived: the board stream sends each batch of changes at once.
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.includes("\r") ? value.replace(/\r\n?/g, "\n") : value;
    let start = 0, end;
    while ((end = buf.indexOf("\n\n", start)) >= 0) {
      const block = buf.slice(start, end);
      start = end + 2;
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(type, JSON.parse(data.join("\n")));
    }
    buf = buf.slice(start);
  }
}

function say(text) { if ($("status").textContent !== text) $("status").textContent = text; }

function signOut(message) {
  sessionStorage.removeItem(KEY);
  if (streamAbort) streamAbort.abort();
  rows.clear();
  everything = true;
  $("signout").hidden = true;
  $("board").hidden = true;
  $("call").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  say("Not connected");
  $("token").focus();
}

// The board stream, reconnecting (with a growing pause) until signed out.
async function follow() {
  if (streamAbort) streamAbort.abort();
  const abort = new AbortController();
  streamAbort = abort;
  let pause = 500;
  while (!abort.signal.aborted) {
    try {
      await stream("/api/v1/board/events", onBoard, abort.signal);
      announce = null;
      say("The server closed the stream; reconnecting…");
    } catch (e) {
      if (abort.signal.aborted) return;
      if (e instanceof AuthError) return signOut(e.message);
      announce = null;
      say("Connection lost (" + e.message + "); reconnecting…");
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 10000);
  }
}

function onBoard(type, data) {
  if (type === "snapshot") {
    rows.clear();
    for (const c of data.calls) rows.set(c.conversation_id, c);
    everything = true;
  } else if (type === "call") {
    const before = rows.get(data.call.conversation_id);
    rows.set(data.call.conversation_id, data.call);
    changed.add(data.call.conversation_id);
    if (data.call.decision && !(before && before.decision)) {
      const who = data.call.caller || data.call.conversation_id;
      announce = { text: "Transfer: " + who + " (" + words(data.call.decision) + ")", until: Date.now() + ANNOUNCE_MS };
    }
    if (view && data.call.conversation_id === view.id) facts(data.call);
    if (data.call.changed_at && unshown.length < 1000) unshown.push(Date.parse(data.call.changed_at));
  } else if (type === "removed") {
    rows.delete(data.conversation_id);
    changed.add(data.conversation_id);
  }
  schedule();
}

// What changed since the last frame: the rows (or, after a snapshot,
// everything), the transfer to announce (for ANNOUNCE_MS), and when the server took in each
// change (its changed_at). All changes pending at a frame are drawn in it, each row once in
// its newest state (the states it went through meanwhile are never drawn); the delay recorded
// for a change runs to the next frame's start, by which it is painted.
const changed = new Set();
let everything = true;
let announce = null;
const ANNOUNCE_MS = 5000;
let unshown = [];
// A frame costs the page its style, layout and paint however little it draws, so frames with
// changes are at least FRAME_MS apart: what arrives meanwhile is drawn together.
const FRAME_MS = 100;
let frame = 0; // a frame (or the wait for one) is pending
let drawnAt = -FRAME_MS;
function schedule() {
  if (frame) return;
  const wait = drawnAt + FRAME_MS - performance.now();
  frame = wait > 0 ? setTimeout(() => { frame = requestAnimationFrame(draw); }, wait) : requestAnimationFrame(draw);
}
// A frame whose oldest change is older than this is behind: it draws the rows' text and
// nothing that can wait (the order, the durations).
const BUDGET_MS = 250;
// The rows are put in order at most this often, since moving rows lays out the whole table.
const SORT_MS = 1000;
let sortedAt = 0;
let behind = 0; // ms the last frame's oldest change had waited
function draw() {
  frame = 0;
  drawnAt = performance.now();
  const now = Date.now();
  behind = unshown.length ? now - Math.min(...unshown) : 0;
  render(now);
  status();
  const sent = unshown;
  unshown = [];
  if (sent.length) requestAnimationFrame(() => {
    const drawn = Date.now();
    for (const t of sent) latency.push(drawn - t);
    if (latency.length > 1000) latency.splice(0, latency.length - 1000);
  });
}

function status() {
  if (announce && Date.now() > announce.until) announce = null;
  say(announce ? announce.text : "Live · " + rows.size + " call" + (rows.size === 1 ? "" : "s"));
}

const words = (s) => (s || "").replace(/_/g, " ");
const level = (x) => (x == null ? "–" : (x > 0 ? "+" : "") + x.toFixed(2));

function duration(row) {
  if (!row.started_at) return "–";
  // An ended call's duration stops at its last event.
  const end = row.ended && row.updated_at ? Date.parse(row.updated_at) : Date.now();
  const s = Math.max(0, Math.round((end - Date.parse(row.started_at)) / 1000));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// A sparkline of scores in [-1, 1]: its points and label.
const SPARK_W = 96, SPARK_H = 24;
function sparkPoints(scores) {
  if (!scores.length) return "";
  const step = scores.length > 1 ? SPARK_W / (scores.length - 1) : 0;
  return scores.map((v, i) => `${(i * step).toFixed(1)},${((1 - v) * (SPARK_H - 2) / 2 + 1).toFixed(1)}`).join(" ");
}
const sparkLabel = (scores) => "recent scores " + scores.map((x) => x.toFixed(1)).join(", ");

// One table row, made once per call; a change writes only the text nodes and
// attributes whose value differs. Each cell's value sits in a box of fixed
// size (style.css: #calls .v), so a changed value is laid out alone.
class Row {
  constructor(id) {
    this.tr = el("tr", { "data-id": id });
    const cell = (label, cls, content) => {
      const td = el("td", label ? { "data-label": label, class: cls } : { class: cls }, el("div", { class: "v" }, content));
      this.tr.append(td);
      return td;
    };
    const text = () => document.createTextNode("");
    this.link = el("a", { href: "#/call/" + encodeURIComponent(id), "data-id": id });
    this.caller = text();
    this.link.append(this.caller);
    cell("", "", this.link);
    this.duration = text();
    cell("duration", "n duration", this.duration);
    this.phase = text();
    cell("phase", "", this.phase);
    this.level = text();
    this.levelCell = cell("level", "n", this.level);
    this.spark = svg("svg", { width: SPARK_W, height: SPARK_H, viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, class: "spark", role: "img" });
    this.spark.append(svg("line", { x1: 0, x2: SPARK_W, y1: SPARK_H / 2, y2: SPARK_H / 2, stroke: "#9aa0a6", "stroke-width": 1 }));
    this.line = svg("polyline", { fill: "none", stroke: "#0b57a4", "stroke-width": 1.5 });
    this.spark.append(this.line);
    cell("", "spark", this.spark);
    this.said = text();
    this.saidCell = cell("said", "words", this.said);
    this.trackers = text();
    cell("trackers", "", this.trackers);
    this.decision = text();
    this.decisionCell = cell("decision", "", this.decision);
    this.shown = {};
    this.tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") location.hash = this.link.getAttribute("href"); });
  }

  // Writes `value` where `put` does, if it differs from what is shown under `key`.
  put(key, value, write) {
    if (this.shown[key] === value) return;
    this.shown[key] = value;
    write(value);
  }

  update(r) {
    const text = (node) => (v) => { node.data = v; };
    this.put("row", r.ended ? "ended" : r.decision ? "transfer" : "", (v) => { this.tr.className = v; });
    this.put("caller", r.caller || r.conversation_id.slice(0, 8), text(this.caller));
    this.put("duration", duration(r), text(this.duration));
    this.put("phase", words(r.phase), text(this.phase));
    this.put("level", level(r.level), text(this.level));
    this.put("levelClass", "n " + (r.level != null && r.level < -0.2 ? "bad" : ""), (v) => { this.levelCell.className = v; });
    const scores = r.scores || [];
    this.put("points", sparkPoints(scores), (v) => this.line.setAttribute("points", v));
    this.put("scores", sparkLabel(scores), (v) => this.spark.setAttribute("aria-label", v));
    this.put("said", r.last_utterance || "", (v) => { this.said.data = v; this.saidCell.title = v; });
    this.put("trackers", (r.trackers || []).map(words).join(", "), text(this.trackers));
    this.put("decision", r.decision ? words(r.decision) : "–", text(this.decision));
    this.put("decisionClass", r.decision ? "bad" : "", (v) => { this.decisionCell.className = v; });
  }
}

const trs = new Map(); // conversation_id -> its Row

// Brings the table up to date: changed rows written in place, new rows added
// at the end, gone rows removed; the order is put right at most every SORT_MS,
// and not while the page is behind (unless it has waited 5 s).
function render(now) {
  const body = $("calls").tBodies[0];
  const ids = everything ? new Set([...trs.keys(), ...rows.keys()]) : changed;
  for (const id of ids) {
    const r = rows.get(id);
    let row = trs.get(id);
    if (!r) { if (row) row.tr.remove(); trs.delete(id); continue; }
    if (!row) {
      row = new Row(id);
      trs.set(id, row);
      body.append(row.tr);
    }
    row.update(r);
  }
  everything = false;
  changed.clear();
  $("no-calls").hidden = rows.size > 0;
  $("calls").hidden = rows.size === 0;
  const due = now - sortedAt >= (behind > BUDGET_MS ? 5 * SORT_MS : SORT_MS);
  if (due) sort(body, now);
  else if (!sortTimer) sortTimer = setTimeout(() => { sortTimer = 0; schedule(); }, SORT_MS);
}
let sortTimer = 0;

// Puts the rows in order of risk, moving only the rows whose place changed
// (and keeping the keyboard focus on the row it was on).
function sort(body, now) {
  sortedAt = now;
  const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.id;
  const sorted = [...rows.values()].sort((a, b) => b.risk - a.risk || (a.started_at || "").localeCompare(b.started_at || ""));
  let at = body.firstElementChild;
  for (const r of sorted) {
    const row = trs.get(r.conversation_id);
    if (!row) continue;
    const tr = row.tr;
    if (tr === at) at = at.nextElementSibling;
    else body.insertBefore(tr, at);
  }
  if (focused && document.activeElement === document.body) {
    const again = trs.get(focused);
    if (again) again.link.focus();
  }
}

// The durations tick once a second; a tick is skipped when the last frame was behind.
function tick() {
  if (announce && Date.now() > announce.until) status();
  if (behind > BUDGET_MS) { behind = 0; return; }
  for (const [id, row] of trs) {
    const r = rows.get(id);
    if (r) row.put("duration", duration(r), (v) => { row.duration.data = v; });
  }
}

function facts(row) {
  const dl = $("call-facts");
  const items = [["caller", row.caller || "–"], ["conversation", row.conversation_id], ["phase", words(row.phase)],
    ["level", level(row.level)], ["decision", row.decision ? words(row.decision) : "none yet"],
    ["transfer", words(row.transfer_status) || "–"]];
  dl.replaceChildren(...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("transfer").disabled = row.ended || !!row.decision;
}

// One call: its events so far, then live.
async function openCall(id) {
  if (view) view.abort.abort();
  view = { id, abort: new AbortController(), scores: [], decisionAt: null };
  $("board").hidden = true;
  $("call").hidden = false;
  $("call-title").textContent = "Call " + id;
  $("transcript").replaceChildren();
  $("transfer-result").textContent = "";
  $("confirm").hidden = true;
  $("transfer").hidden = false;
  chart();
  if (rows.has(id)) facts(rows.get(id));
  $("call-title").setAttribute("tabindex", "-1");
  $("call-title").focus();
  const v = view;
  try {
    await stream("/api/v1/conversations/" + encodeURIComponent(id) + "/events", (type, e) => onCallEvent(v, type, e), v.abort.signal);
  } catch (e) {
    if (e instanceof AuthError) return signOut(e.message);
    if (!v.abort.signal.aborted) $("transfer-result").textContent = "The call's stream stopped: " + e.message;
  }
}

function onCallEvent(v, type, e) {
  if (v !== view) return;
  const list = $("transcript");
  if (type === "utterance") {
    const li = el("li", { "data-seq": e.seq, "data-speaker": e.speaker }, el("span", { class: "who" }, e.speaker + ": "), e.text);
    list.append(li);
  } else if (type === "ivr_said") {
    list.append(el("li", {}, el("span", { class: "who" }, "ivr: "), e.text));
  } else if (type === "scored" && e.speaker === "caller") {
    v.scores.push(e.score);
    const li = list.querySelector(`li[data-seq="${e.seq}"][data-speaker="caller"]`);
    if (li) li.append(el("span", { class: "score " + (e.score < 0 ? "bad" : "") }, level(e.score)));
    chart();
  } else if (type === "decision") {
    v.decisionAt = Math.max(0, v.scores.length - 1);
    const reason = (e.decision && e.decision.reason) || "";
    const by = e.source && e.source !== reason ? " (" + words(e.source) + ")" : "";
    list.append(el("li", { class: "decision" }, "Transfer decided: " + words(reason) + by));
    chart();
  } else if (type === "transfer") {
    list.append(el("li", {}, "Transfer " + words(e.status) + (e.target ? " → " + e.target : "")));
  } else if (type === "call_ended") {
    list.append(el("li", {}, "Call ended (" + words(e.reason) + ")"));
  }
}

// The caller's scores, one point per utterance, with the decision marked.
function chart() {
  const v = view, w = 600, h = 200, pad = 30;
  const n = Math.max(v.scores.length, 2);
  const x = (i) => pad + (i * (w - pad - 10)) / (n - 1);
  const y = (s) => 10 + ((1 - s) * (h - 40)) / 2;
  const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img",
    "aria-label": "caller sentiment: " + (v.scores.map((x) => x.toFixed(2)).join(", ") || "no scores yet") });
  for (const t of [1, 0, -1]) {
    s.append(svg("line", { x1: pad, x2: w - 10, y1: y(t), y2: y(t), stroke: t === 0 ? "#4d4d4d" : "#d9dce1" }));
    const label = svg("text", { x: pad - 4, y: y(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#1a1a1a" });
    label.textContent = t > 0 ? "+1" : String(t);
    s.append(label);
  }
  if (v.scores.length) {
    s.append(svg("polyline", { points: v.scores.map((p, i) => `${x(i)},${y(p)}`).join(" "), fill: "none", stroke: "#0b57a4", "stroke-width": 2 }));
  }
  if (v.decisionAt != null) {
    s.append(svg("line", { x1: x(v.decisionAt), x2: x(v.decisionAt), y1: 5, y2: h - 25, stroke: "#a4001d", "stroke-width": 2, "stroke-dasharray": "4 3" }));
    const left = x(v.decisionAt) > w - 80;
    const t = svg("text", { x: x(v.decisionAt) + (left ? -4 : 4), y: h - 28, "font-size": 11, fill: "#a4001d",
      "text-anchor": left ? "end" : "start" });
    t.textContent = "transfer";
    s.append(t);
  }
  const xl = svg("text", { x: w / 2, y: h - 6, "text-anchor": "middle", "font-size": 11, fill: "#1a1a1a" });
  xl.textContent = "caller utterances";
  s.append(xl);
  $("chart").replaceChildren(s);
}

async function transfer() {
  $("confirm").hidden = true;
  $("transfer").disabled = true;
  const out = $("transfer-result");
  out.textContent = "Transferring…";
  try {
    const res = await fetch("/api/v1/conversations/" + encodeURIComponent(view.id) + "/transfer", {
      method: "POST",
      headers: { Authorization: "Bearer " + token(), "Content-Type": "application/json" },
      body: "{}",
    });
    const body = await res.json().catch(() => ({}));
    if (res.status === 401) return signOut("The admin token is wrong.");
    out.textContent = res.ok ? "Transfer requested: the caller is being put through." : "Not transferred: " + (body.error || res.status);
    out.className = res.ok ? "good" : "bad";
  } catch (e) {
    out.textContent = "Not transferred: " + e.message;
    out.className = "bad";
  }
}

function route() {
  if (!token()) return signOut();
  $("login").hidden = true;
  $("signout").hidden = false;
  const m = location.hash.match(/^#\/call\/(.+)$/);
  if (m) return openCall(decodeURIComponent(m[1]));
  if (view) { view.abort.abort(); view = null; }
  $("call").hidden = true;
  $("board").hidden = false;
  render(Date.now());
}

window.ivrxBoard = { rows, latency, behind: () => behind };

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    follow();
    route();
  });
  $("signout").addEventListener("click", () => signOut());
  $("transfer").addEventListener("click", () => { $("confirm").hidden = false; $("confirm-yes").focus(); });
  $("confirm-no").addEventListener("click", () => { $("confirm").hidden = true; $("transfer").focus(); });
  $("confirm-yes").addEventListener("click", transfer);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && view) location.hash = "#/";
  });
  window.addEventListener("hashchange", route);
  setInterval(() => { if (!$("board").hidden) tick(); }, 1000);
  if (token()) follow();
  route();
});
