// The review page: shows a run (overlay video, onset scores, events) and edits its corrections,
// which are saved with POST /api/labels. Points are in pixels of the run's input video, origin at
// the centre of the top-left pixel.
"use strict";

const LABEL_EVERY = 30;  // the paper annotates the source every 30 frames
const $ = (id) => document.getElementById(id);
const video = $("video"), marks = $("marks"), plot = $("plot");
let run = null, fps = 30, frames = 1, frame = 0;
let labels = {onset: null, source: null, points: {}};  // points: frame -> [x, y]
let dirty = false;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${(await r.text()).trim()}`);
  return r.json();
}

function fromRun() {
  // The run's own answer as the starting point: onset, source, and its track every 30 frames.
  const onset = run.onset ? run.onset.frame : null;
  const points = {};
  if (onset !== null) {
    for (const t of run.track) {
      if (t.frame > onset && (t.frame - onset) % LABEL_EVERY === 0) points[t.frame] = [t.x, t.y];
    }
  }
  return {onset, source: run.source ? [run.source.x, run.source.y] : null, points};
}

function fromSaved(saved) {
  const points = {};
  for (const [f, pts] of Object.entries(saved.points)) points[+f] = pts[0];
  return {onset: saved.onset_frame, source: saved.source, points};
}

// ---- frames and time --------------------------------------------------------------------
function frameOfTime(t) { return Math.max(0, Math.min(frames - 1, Math.floor(t * fps + 1e-3))); }

function seek(f) {
  video.pause();
  frame = Math.max(0, Math.min(frames - 1, Math.round(f)));
  video.currentTime = (frame + 0.5) / fps;  // the middle of the frame: no rounding to a neighbour
  redraw();
}

function labelFrames() {
  if (labels.onset === null) return [];
  const out = [];
  for (let f = labels.onset; f < frames; f += LABEL_EVERY) out.push(f);
  return out;
}

// ---- drawing -----------------------------------------------------------------------------
function fitCanvas(canvas) {
  const r = canvas.getBoundingClientRect(), k = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(r.width * k) || canvas.height !== Math.round(r.height * k)) {
    canvas.width = Math.round(r.width * k);
    canvas.height = Math.round(r.height * k);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(k, 0, 0, k, 0, 0);
  return [ctx, r.width, r.height];
}

function drawMarks() {
  const [ctx, w, h] = fitCanvas(marks);
  ctx.clearRect(0, 0, w, h);
  const vw = video.videoWidth || run.width, vh = video.videoHeight || run.height;
  const toScreen = ([x, y]) => [(x + 0.5) / vw * w, (y + 0.5) / vh * h];
  const ring = (xy, color, r) => {
    const [sx, sy] = toScreen(xy);
    ctx.strokeStyle = color; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(sx, sy, r, 0, 2 * Math.PI); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(sx - r - 5, sy); ctx.lineTo(sx + r + 5, sy);
    ctx.moveTo(sx, sy - r - 5); ctx.lineTo(sx, sy + r + 5); ctx.stroke();
  };
  if (labels.source && frame === labels.onset) ring(labels.source, "#36d6e7", 10);
  if (labels.points[frame]) ring(labels.points[frame], "#ffd34d", 8);
}

function drawPlot() {
  const [ctx, w, h] = fitCanvas(plot);
  ctx.clearRect(0, 0, w, h);
  const xOf = (f) => (f + 0.5) / frames * w;
  const top = Math.max(1, ...run.scores);
  const vline = (f, color, dash) => {
    ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(xOf(f), 0); ctx.lineTo(xOf(f), h); ctx.stroke(); ctx.setLineDash([]);
  };
  for (const f of Object.keys(labels.points)) vline(+f, "#ffd34d80", [2, 3]);
  for (const e of run.events) vline(e.onset.frame, "#ff5a5a", [6, 4]);
  if (labels.onset !== null) vline(labels.onset, "#36d6e7", []);
  ctx.strokeStyle = "#8fbf7f"; ctx.lineWidth = 1.5; ctx.beginPath();
  run.scores.forEach((s, f) => { const y = h - 4 - s / top * (h - 8); f ? ctx.lineTo(xOf(f), y) : ctx.moveTo(xOf(f), y); });
  ctx.stroke();
  vline(frame, "#ffffff", []);
}

function fitVideo() {  // as large as the column and 62 % of the window allow, same shape
  const vw = video.videoWidth || run.width, vh = video.videoHeight || run.height;
  const k = Math.min($("viewer").clientWidth / vw, window.innerHeight * 0.62 / vh);
  video.style.width = `${Math.floor(vw * k)}px`;
  video.style.height = `${Math.floor(vh * k)}px`;
}

function redraw() {
  const info = $("frame-info");
  info.dataset.frame = frame;
  info.textContent = `frame ${frame} / ${frames - 1} · ${(frame / fps).toFixed(2)} s · score ${(run.scores[frame] ?? 0).toFixed(3)}`;
  $("onset-value").textContent = labels.onset === null ? "none (no bleeding)" : `frame ${labels.onset}`;
  $("source-value").textContent = labels.source ? `(${labels.source[0].toFixed(1)}, ${labels.source[1].toFixed(1)})` : "none";
  const list = $("points");
  list.replaceChildren(...Object.keys(labels.points).map(Number).sort((a, b) => a - b).map((f) => {
    const li = document.createElement("li");
    const [x, y] = labels.points[f];
    li.textContent = `frame ${f}: (${x.toFixed(1)}, ${y.toFixed(1)})`;
    li.onclick = () => seek(f);
    return li;
  }));
  drawMarks();
  drawPlot();
}

function fillEvents() {
  const body = $("events").querySelector("tbody");
  body.replaceChildren(...run.events.map((e) => {
    const tr = document.createElement("tr");
    for (const text of [e.onset.frame, `${e.onset.time_s.toFixed(2)} s`, e.onset.confidence.toFixed(2),
      `(${e.source.x.toFixed(1)}, ${e.source.y.toFixed(1)})`, e.source.confidence.toFixed(2)]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    tr.onclick = () => seek(e.onset.frame);
    return tr;
  }));
  if (!run.events.length) body.innerHTML = "<tr><td colspan=5>no bleeding raised</td></tr>";
}

// ---- editing -----------------------------------------------------------------------------
function edit(change) { change(); dirty = true; status("unsaved changes"); redraw(); }

function setOnsetHere() { edit(() => { labels.onset = frame; prune(); }); }

function prune() {  // track points before the onset cannot be the source's track
  for (const f of Object.keys(labels.points)) if (+f <= labels.onset) delete labels.points[f];
}

function clickOnFrame(ev) {
  const r = marks.getBoundingClientRect();
  const vw = video.videoWidth || run.width, vh = video.videoHeight || run.height;
  const clamp = (v, n) => Math.max(-0.5, Math.min(n - 0.5, v));
  const xy = [clamp((ev.clientX - r.left) / r.width * vw - 0.5, run.width),
    clamp((ev.clientY - r.top) / r.height * vh - 0.5, run.height)];
  const mode = document.querySelector("input[name=mode]:checked").value;
  if (mode === "source") {
    edit(() => {
      if (labels.onset === null || labels.onset !== frame) { labels.onset = frame; prune(); }
      labels.source = xy;
    });
  } else if (labels.onset === null || frame <= labels.onset) {
    status("track points come after the onset frame: set the onset first", true);
  } else {
    edit(() => { labels.points[frame] = xy; });
  }
}

function jumpLabel(direction) {
  const fs = labelFrames();
  const next = direction > 0 ? fs.find((f) => f > frame) : fs.reverse().find((f) => f < frame);
  if (next !== undefined) seek(next);
}

async function save() {
  const body = {onset_frame: labels.onset, source: labels.source, points: {}};
  for (const [f, xy] of Object.entries(labels.points)) body.points[f] = [xy];
  const r = await fetch("/api/labels", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  const text = (await r.text()).trim();
  if (r.ok) { dirty = false; status("saved labels.json"); } else status(`not saved: ${text}`, true);
}

// ---- wiring ------------------------------------------------------------------------------
function wire() {
  $("back10").onclick = () => seek(frame - 10);
  $("back1").onclick = () => seek(frame - 1);
  $("fwd1").onclick = () => seek(frame + 1);
  $("fwd10").onclick = () => seek(frame + 10);
  $("play").onclick = () => (video.paused ? video.play() : video.pause());
  $("set-onset").onclick = setOnsetHere;
  $("goto-onset").onclick = () => labels.onset !== null && seek(labels.onset);
  $("prev-label").onclick = () => jumpLabel(-1);
  $("next-label").onclick = () => jumpLabel(1);
  $("delete-point").onclick = () => labels.points[frame] && edit(() => delete labels.points[frame]);
  $("no-bleeding").onclick = () => edit(() => { labels = {onset: null, source: null, points: {}}; });
  $("reset").onclick = () => edit(() => { labels = fromRun(); });
  $("save").onclick = save;
  marks.addEventListener("click", clickOnFrame);
  plot.addEventListener("click", (ev) => {
    const r = plot.getBoundingClientRect();
    seek(Math.floor((ev.clientX - r.left) / r.width * frames));
  });
  video.addEventListener("timeupdate", () => { if (!video.paused) { frame = frameOfTime(video.currentTime); redraw(); } });
  video.addEventListener("play", () => { $("play").textContent = "pause"; });
  video.addEventListener("pause", () => { $("play").textContent = "play"; frame = frameOfTime(video.currentTime); redraw(); });
  video.addEventListener("seeked", () => { document.body.dataset.seekedTo = frame; drawMarks(); });
  window.addEventListener("resize", () => { fitVideo(); redraw(); });
  window.addEventListener("beforeunload", (ev) => { if (dirty) ev.preventDefault(); });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" && ev.target.type !== "radio") return;
    const step = ev.shiftKey ? 10 : 1;
    const keys = {ArrowLeft: () => seek(frame - step), ArrowRight: () => seek(frame + step),
      " ": () => $("play").click(), o: setOnsetHere, n: () => $("no-bleeding").click(),
      "[": () => jumpLabel(-1), "]": () => jumpLabel(1), s: save, Delete: () => $("delete-point").click()};
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (keys[key] && !ev.altKey && !(ev.ctrlKey && key !== "s")) { ev.preventDefault(); keys[key](); }
  });
}

async function main() {
  try {
    const [result, info, saved] = await Promise.all([getJSON("/api/result"), getJSON("/api/video"), getJSON("/api/labels")]);
    run = result;
    fps = info.fps || run.fps || 30;
    frames = run.frames;
    labels = saved ? fromSaved(saved) : fromRun();
    $("video-name").textContent = run.video;
    fillEvents();
    wire();
    video.addEventListener("error", () => status("this browser cannot play overlay.mp4", true));
    if (video.readyState < 1) await new Promise((ok) => video.addEventListener("loadedmetadata", ok, {once: true}));
    fitVideo();
    seek(labels.onset ?? 0);
    status(saved ? "loaded saved labels.json" : "showing the run's result (not yet reviewed)");
    document.body.dataset.ready = "1";
  } catch (e) {
    status(String(e.message || e), true);
  }
}

main();
