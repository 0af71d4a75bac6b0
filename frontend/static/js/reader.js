// The reader's case page: viewer, questions, keyboard; answers go through queue.js, which
// survives network failures and reloads and delivers each answer exactly once (answer ids).
import { drain, enqueue, flush, newId, on, pending } from "./queue.js";

const root = document.getElementById("reader");
const position = Number(root.dataset.position);
const total = Number(root.dataset.total);
const TIME_KEY = `piestudy.activeMs.${position}`;
const $ = (id) => document.getElementById(id);
$("answers").addEventListener("submit", (event) => event.preventDefault());  // answers save as given

// ---------- answer queue ----------
const STATE_TEXT = { saved: "Saved", saving: "Saving…", retrying: "Not saved yet, retrying…" };
function setState(state) {
  const el = $("save-state");
  el.dataset.state = state;
  el.textContent = STATE_TEXT[state];
}
on("state", setState);
on("saved", (saved) => updateProgress(saved.progress));
on("problem", (status, text) => {
  showMessage(text);
  if (status === 401) window.location.href = "/read";
});

function showMessage(text) { $("message").textContent = text; }

function updateProgress(progress) {
  $("progress-bar").value = progress.answered;
  $("progress-bar").textContent = progress.answered;
}

// ---------- active time on this case ----------
let activeMs = Number(localStorage.getItem(TIME_KEY) || 0);
let activeSince = document.visibilityState === "visible" ? performance.now() : null;
function tick() {
  if (activeSince !== null) {
    const now = performance.now();
    activeMs += now - activeSince;
    activeSince = now;
    localStorage.setItem(TIME_KEY, String(Math.round(activeMs)));
  }
}
document.addEventListener("visibilitychange", () => {
  tick();
  activeSince = document.visibilityState === "visible" ? performance.now() : null;
});
setInterval(tick, 1000);

// ---------- answers ----------
const answer = { agree: null, quality: null, difficulty: null };
const complete = () => answer.agree !== null && answer.quality !== null && answer.difficulty !== null;

function render() {
  document.querySelectorAll("#answers input[type=radio]").forEach((input) => {
    const value = answer[input.name];
    const mine = input.name === "agree" ? (value === null ? null : value ? "yes" : "no") : String(value);
    input.checked = value !== null && input.value === mine;
  });
  $("next").disabled = !complete();
}

function give(field, value) {
  if (root.dataset.accepting !== "true") { showMessage("This study is not accepting answers."); return; }
  if (answer[field] === value) return;
  answer[field] = value;
  render();
  tick();
  const body = { answer_id: newId(), [field]: value, active_seconds: Math.round(activeMs) / 1000,
                 client_sent_at: new Date().toISOString() };
  enqueue(position, body);
  flush();
}

document.querySelectorAll("#answers input[type=radio]").forEach((input) => {
  input.addEventListener("change", () => {
    const value = input.name === "agree" ? input.value === "yes" : Number(input.value);
    give(input.name, value);
  });
});

async function goNext() {
  if (!complete()) { showMessage("Answer all three questions first."); return; }
  // Deliver this case's answers before leaving; if the server is unreachable, go on anyway:
  // the queue keeps them and the next page delivers them.
  await drain(3000);
  window.location.href = position < total ? `/read/cases/${position + 1}` : "/read/done";
}
$("next").addEventListener("click", goNext);
$("prev").addEventListener("click", () => { if (position > 1) window.location.href = `/read/cases/${position - 1}`; });

// ---------- viewer ----------
const stage = $("stage");
const img = $("image");
const view = { scale: 1, x: 0, y: 0, invert: false, brightness: 100, contrast: 100 };
function applyView() {
  img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  img.style.filter = `brightness(${view.brightness}%) contrast(${view.contrast}%)${view.invert ? " invert(1)" : ""}`;
  $("invert").setAttribute("aria-pressed", String(view.invert));
}
function fit() {
  if (!img.naturalWidth) return;
  const s = Math.min(stage.clientWidth / img.naturalWidth, stage.clientHeight / img.naturalHeight);
  view.scale = s;
  view.x = (stage.clientWidth - img.naturalWidth * s) / 2;
  view.y = (stage.clientHeight - img.naturalHeight * s) / 2;
  applyView();
}
function zoom(factor, cx = stage.clientWidth / 2, cy = stage.clientHeight / 2) {
  const s = Math.min(Math.max(view.scale * factor, 0.05), 40);
  view.x = cx - ((cx - view.x) * s) / view.scale;
  view.y = cy - ((cy - view.y) * s) / view.scale;
  view.scale = s;
  applyView();
}
function reset() {
  Object.assign(view, { invert: false, brightness: 100, contrast: 100 });
  $("brightness").value = 100; $("contrast").value = 100;
  fit();
}
img.addEventListener("load", fit);
window.addEventListener("resize", fit);
stage.addEventListener("wheel", (e) => {
  e.preventDefault();
  const r = stage.getBoundingClientRect();
  zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
}, { passive: false });
let drag = null;
stage.addEventListener("pointerdown", (e) => {
  drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, b: view.brightness, c: view.contrast, wl: e.button === 2 || e.shiftKey };
  stage.setPointerCapture(e.pointerId);
  stage.classList.add("dragging");
});
stage.addEventListener("pointermove", (e) => {
  if (!drag) return;
  const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  if (drag.wl) {  // window/level: horizontal = contrast, vertical = brightness
    view.contrast = Math.min(Math.max(drag.c + dx, 20), 400);
    view.brightness = Math.min(Math.max(drag.b - dy, 20), 300);
    $("brightness").value = view.brightness; $("contrast").value = view.contrast;
  } else {
    view.x = drag.vx + dx; view.y = drag.vy + dy;
  }
  applyView();
});
const endDrag = () => { drag = null; stage.classList.remove("dragging"); };
stage.addEventListener("pointerup", endDrag);
stage.addEventListener("pointercancel", endDrag);
stage.addEventListener("contextmenu", (e) => e.preventDefault());
$("zoom-in").addEventListener("click", () => zoom(1.25));
$("zoom-out").addEventListener("click", () => zoom(0.8));
$("fit").addEventListener("click", fit);
$("reset").addEventListener("click", reset);
$("invert").addEventListener("click", () => { view.invert = !view.invert; applyView(); });
$("brightness").addEventListener("input", (e) => { view.brightness = Number(e.target.value); applyView(); });
$("contrast").addEventListener("input", (e) => { view.contrast = Number(e.target.value); applyView(); });
let caseData = null;
$("full-res").addEventListener("click", () => {
  const full = $("full-res").getAttribute("aria-pressed") !== "true";
  $("full-res").setAttribute("aria-pressed", String(full));
  img.src = caseData.image_url + (full ? "" : "?size=display");
});

// ---------- keyboard ----------
const DIFFICULTY_KEYS = { q: 1, w: 2, e: 3, r: 4, t: 5 };
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target instanceof HTMLInputElement && e.target.type === "range") return;
  const k = e.key.toLowerCase();
  if (k === "y") give("agree", true);
  else if (k === "n") give("agree", false);
  else if ("12345".includes(k) && k.length === 1) give("quality", Number(k));
  else if (k in DIFFICULTY_KEYS) give("difficulty", DIFFICULTY_KEYS[k]);
  else if (k === "enter") { e.preventDefault(); goNext(); }
  else if (k === "arrowright") { if (complete()) goNext(); }
  else if (k === "arrowleft") $("prev").click();
  else if (k === "+" || k === "=") zoom(1.25);
  else if (k === "-") zoom(0.8);
  else if (k === "0") fit();
  else if (k === "i") $("invert").click();
  else if (k === "?") $("help-toggle").click();
  else return;
});
$("help-toggle").addEventListener("click", () => {
  const help = $("help");
  help.hidden = !help.hidden;
  $("help-toggle").setAttribute("aria-expanded", String(!help.hidden));
});

// ---------- load ----------
async function load() {
  flush();  // deliver anything left from earlier pages or sessions
  const response = await fetch(`/api/reader/cases/${position}`, { credentials: "same-origin" });
  if (response.status === 401) { window.location.href = "/read"; return; }
  caseData = await response.json();
  const labels = $("labels");
  labels.replaceChildren(...caseData.labels.map((name) => Object.assign(document.createElement("li"), { textContent: name })));
  const mine = pending().filter((x) => x.position === position).map((x) => x.body);
  const saved = caseData.answer || {};
  for (const field of ["agree", "quality", "difficulty"]) {
    answer[field] = saved[field] ?? null;
    for (const p of mine) if (p[field] !== undefined && p[field] !== null) answer[field] = p[field];
  }
  if (saved.active_seconds && saved.active_seconds * 1000 > activeMs) activeMs = saved.active_seconds * 1000;
  img.src = caseData.image_url + "?size=display";
  render();
  root.dataset.ready = "true";
}
load();
