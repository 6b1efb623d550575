// radnerf serve: the page. Plain JS, no build step.
"use strict";
const $ = (s) => document.querySelector(s);
const api = async (url, opts) => {
  const r = await fetch(url, opts);
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
};
function status(el, text, isError = false) { el.textContent = text; el.classList.toggle("error", isError); }

// ------------------------------------------------------------------ views
document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
function show(view) {
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  document.querySelectorAll(".view").forEach((s) => s.classList.toggle("active", s.id === `view-${view}`));
}

// ------------------------------------------------------------------ subjects
async function loadSubjects() {
  const box = $("#subjects");
  try {
    const data = await api("/api/subjects");
    $("#workspace").textContent = data.workspace;
    box.innerHTML = "";
    if (!data.models.length) box.innerHTML = "<p>No trained subjects or bundles in this workspace yet.</p>";
    for (const m of data.models) {
      const card = document.createElement("div");
      card.className = "card";
      card.dataset.model = m.id;
      const detail = m.kind === "subject" ? `subject · ${m.stage}` : `bundle${m.size ? " · " + m.size : ""}`;
      card.innerHTML = `<img alt="preview of ${m.name}" loading="lazy"><h3></h3><p>${detail}</p>`;
      card.querySelector("h3").textContent = m.name;
      card.querySelector("img").src = `/api/preview/${encodeURIComponent(m.id)}`;
      box.appendChild(card);
    }
    document.querySelectorAll(".model-select").forEach((sel) => {
      sel.innerHTML = "";
      for (const m of data.models) sel.add(new Option(m.name, m.id));
    });
  } catch (e) { box.innerHTML = ""; status(box, `could not list subjects: ${e.message}`, true); }
}

// ------------------------------------------------------------------ render
let recorded = null;
$("#record").addEventListener("click", async (ev) => {
  const btn = ev.target;
  if (btn.recorder) { btn.recorder.stop(); return; }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const rec = new MediaRecorder(stream);
  const parts = [];
  rec.ondataavailable = (e) => parts.push(e.data);
  rec.onstop = () => {
    stream.getTracks().forEach((t) => t.stop());
    recorded = new Blob(parts, { type: rec.mimeType || "audio/webm" });
    btn.recorder = null; btn.textContent = "● Record";
    status($("#render-status"), `recorded ${(recorded.size / 1024).toFixed(0)} kB; press Render`);
  };
  rec.start(); btn.recorder = rec; btn.textContent = "■ Stop recording";
});

$("#render-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const st = $("#render-status"), bar = $("#render-progress");
  const form = new FormData();
  form.append("model", ev.target.model.value);
  const file = $("#render-file").files[0];
  if (file) form.append("file", file);
  else if (recorded) form.append("file", recorded, "recording.webm");
  else { status(st, "choose an audio file or record one first", true); return; }
  $("#render-result").hidden = true;
  try {
    let job = await api("/api/render", { method: "POST", body: form });
    bar.hidden = false; bar.value = 0;
    while (job.status === "queued" || job.status === "running") {
      status(st, job.status === "queued" ? `queued (${job.position} ahead)` : `rendering frame ${job.done} of ${job.total}`);
      if (job.total) bar.value = job.done / job.total;
      await new Promise((r) => setTimeout(r, 400));
      job = await api(`/api/jobs/${job.id}`);
    }
    if (job.status === "error") throw new Error(job.error);
    bar.value = 1;
    const v = $("#render-video");
    v.src = job.video;
    $("#render-download").href = `${job.video}?download=1`;
    v.onloadedmetadata = () => { $("#render-duration").textContent = `${v.duration.toFixed(2)} s`; };
    $("#render-result").hidden = false;
    status(st, `done: ${job.total} frames`);
  } catch (e) { bar.hidden = true; status(st, e.message, true); }
});

// ------------------------------------------------------------------ live
const live = { ws: null, ctx: null, node: null, stream: null, lat: [], srv: [], frames: 0, playAt: 0 };
const WORKLET = `
class Capture extends AudioWorkletProcessor {
  constructor() { super(); this.buf = new Int16Array(480); this.n = 0; }
  process(inputs) {
    const ch = inputs[0][0];
    if (ch) for (let i = 0; i < ch.length; i++) {
      this.buf[this.n++] = Math.max(-1, Math.min(1, ch[i])) * 32767;
      if (this.n === this.buf.length) { this.port.postMessage(this.buf.slice()); this.n = 0; }
    }
    return true;
  }
}
registerProcessor("capture", Capture);`;

function pct(arr, p) {
  if (!arr.length) return NaN;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

async function startLive() {
  const st = $("#live-status");
  const model = $("#live-model").value;
  if (!model) { status(st, "no subject to talk to", true); return; }
  Object.assign(live, { lat: [], srv: [], frames: 0, playAt: 0 });
  $("#live-start").disabled = true;
  status(st, "loading the subject…");
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/live?model=${encodeURIComponent(model)}`);
  ws.binaryType = "arraybuffer";
  live.ws = ws;
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onJson(JSON.parse(ev.data)) : onFrame(ev.data));
  ws.onclose = () => { stopLive(); };
  ws.onerror = () => status(st, "the connection to the server failed", true);
}

async function onJson(msg) {
  const st = $("#live-status");
  if (msg.type === "ready") {
    $("#live-stated").textContent = `${msg.latency_ms} ms (audio windows ${msg.audio_wait_ms} ms)`;
    const c = $("#live-canvas"); c.width = msg.width; c.height = msg.height;
    try {
      live.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
      live.ctx = new AudioContext({ sampleRate: 16000 });
      const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
      await live.ctx.audioWorklet.addModule(url);
      const src = live.ctx.createMediaStreamSource(live.stream);
      live.node = new AudioWorkletNode(live.ctx, "capture");
      live.node.port.onmessage = (e) => {
        if (!live.ws || live.ws.readyState !== WebSocket.OPEN) return;
        const pcm = e.data, msg = new ArrayBuffer(8 + pcm.byteLength);
        new DataView(msg).setFloat64(0, performance.now(), true);
        new Int16Array(msg, 8).set(pcm);
        live.ws.send(msg);
      };
      src.connect(live.node);
      $("#live-stop").disabled = false;
      status(st, "listening: speak, or play a sound into the microphone");
    } catch (e) { status(st, `microphone: ${e.message}`, true); live.ws.close(); }
  } else if (msg.type === "event") status(st, msg.message);
  else if (msg.type === "error") status(st, msg.message, true);
}

function onFrame(buf) {
  const n = new DataView(buf).getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const jpeg = new Blob([new Uint8Array(buf, 4 + n, head.jpeg)], { type: "image/jpeg" });
  const off = 4 + n + head.jpeg;
  const audio = new Int16Array(buf.slice(off, off + 2 * head.audio));
  createImageBitmap(jpeg).then((bmp) => {
    $("#live-canvas").getContext("2d").drawImage(bmp, 0, 0);
    if (head.sent != null) live.lat.push(performance.now() - head.sent);
    live.srv.push(head.server_ms);
    live.frames += 1;
    if (live.lat.length > 500) { live.lat.shift(); live.srv.shift(); }
    $("#live-frames").textContent = live.frames;
    $("#live-latency").textContent = `median ${pct(live.lat, 0.5).toFixed(0)} ms · p95 ${pct(live.lat, 0.95).toFixed(0)} ms`;
    $("#live-server").textContent = `median ${pct(live.srv, 0.5).toFixed(0)} ms · p95 ${pct(live.srv, 0.95).toFixed(0)} ms`;
    $("#live-level").textContent = head.level;
    document.body.dataset.liveFrames = live.frames;
  });
  if ($("#live-playback").checked && live.ctx && audio.length) {  // the voice, delayed to match the frame
    const b = live.ctx.createBuffer(1, audio.length, 16000);
    const ch = b.getChannelData(0);
    for (let i = 0; i < audio.length; i++) ch[i] = audio[i] / 32768;
    const s = live.ctx.createBufferSource();
    s.buffer = b; s.connect(live.ctx.destination);
    live.playAt = Math.max(live.playAt, live.ctx.currentTime);
    s.start(live.playAt); live.playAt += b.duration;
  }
}

function stopLive() {
  if (live.node) { live.node.port.onmessage = null; live.node.disconnect(); live.node = null; }
  if (live.stream) { live.stream.getTracks().forEach((t) => t.stop()); live.stream = null; }
  if (live.ctx) { live.ctx.close(); live.ctx = null; }
  if (live.ws && live.ws.readyState === WebSocket.OPEN) live.ws.send("end");
  live.ws = null;
  $("#live-start").disabled = false; $("#live-stop").disabled = true;
}
$("#live-start").addEventListener("click", startLive);
$("#live-stop").addEventListener("click", stopLive);

loadSubjects();
