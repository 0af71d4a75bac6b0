// The reader's case page: one page for all of a reader's cases. Cases are shown in place
// (history.pushState), from the network when it is there and from this reader's prefetched
// copies when it is not, so that reading goes on offline; answers go through queue.js, which
// keeps them until they are delivered, as this reader and no other.
import { createQueue, newId, readerFetch } from "./queue.js";
import { initViewer, viewerPresets } from "./viewer.js";

const root = document.getElementById("reader");
const $ = (id) => document.getElementById(id);
const readerKey = root.dataset.readerKey;
const total = Number(root.dataset.total);
// Practice cases come first, positions 1..practiceCount: answered as any other, never counted.
const practiceCount = Number(root.dataset.practice || 0);
const caseName = (p) => (p <= practiceCount ? `Practice case ${p}` : `Case ${p}`);
const queue = createQueue(readerKey);
const QUESTIONS = ["agree", "quality", "difficulty"];
const KNOWN_KEY = `piestudy.known.${readerKey}`;  // the answers last seen from the server
const timeKey = (p) => `piestudy.activeMs.${readerKey}.${p}`;
const viewer = initViewer({
  presets: viewerPresets(JSON.parse(root.dataset.presets || "[]")),
  // The full rendering (16-bit; the next case's is fetched ahead) and how to window it (in the
  // case's own data).
  async loadFull() {
    const p = position;
    const info = caseData && caseData.position === p ? caseData.rendering : null;
    try {
      const image = info ? await cachedImage(fullUrl(p)) : null;
      if (image && image.ok) return { info, image: await image.blob() };
    } catch (err) { /* offline and not fetched before */ }
    if (p === position) showMessage("The full-range image cannot be loaded now: the display copy is shown, without window/level.");
    return null;
  },
});
const fullUrl = (p) => `/api/reader/cases/${p}/image?size=full`;
// Fetch a case's full rendering ahead into this reader's cache (once: a fetch under way is
// joined, not repeated), so that it shows at once, and offline.
async function prefetchFull(p) {
  if (p > total) return;
  try { if (!(await cacheMatch(fullUrl(p)))) await fetchOnce(fullUrl(p)); } catch (err) { /* offline */ }
}
$("answers").addEventListener("submit", (event) => event.preventDefault());  // answers save as given

let position = Number(root.dataset.position);
let caseData = null;
let imageShown = false;
let serverAnswered = Number(root.dataset.answered);
const refused = {};  // position -> why the server refused its last answer
let notice = "";

// ---------- this reader's copies of their cases, for reading offline ----------
const CACHE = `piestudy-reader-${readerKey}`;
const memoryCache = new Map();  // where Cache Storage is not available (an insecure origin)
async function cachePut(url, response) {
  if (window.caches) await (await caches.open(CACHE)).put(url, response);
  else memoryCache.set(url, await response.blob());
}
async function cacheMatch(url) {
  if (window.caches) return (await (await caches.open(CACHE)).match(url)) || null;
  return memoryCache.has(url) ? new Response(memoryCache.get(url)) : null;
}
// This reader's copy first: a case's images never change (its position's image is fixed), so
// each is fetched once; what it was prefetched for is showing it at once.
async function cachedImage(url) {
  const copy = await cacheMatch(url);
  if (copy) return copy;
  const response = await fetchOnce(url);
  // another caller may have read this response's body already: the stored copy is the same
  return (response && response.ok && (await cacheMatch(url))) || response;
}
const fetching = new Map();  // url -> the fetch under way that stores it
function fetchOnce(url) {
  if (!fetching.has(url)) fetching.set(url, cachedGet(url).finally(() => fetching.delete(url)));
  return fetching.get(url);
}
// The network first (stored for later), this reader's copy when the network is down.
async function cachedGet(url) {
  try {
    const response = await readerFetch(readerKey, url);
    if (response.ok) await cachePut(url, response.clone());
    return response;
  } catch (err) {
    return cacheMatch(url);
  }
}

// ---------- answers: what the server said, then what waits to be sent ----------
const known = () => JSON.parse(localStorage.getItem(KNOWN_KEY) || "{}");
function remember(p, state) {
  if (!state) return;
  const all = known();
  // A response can overtake another (a case fetched before a save, arriving after it): never
  // let an older copy of the answer replace a newer one.
  const have = all[p];
  if (have && have.updated_at && state.updated_at && Date.parse(state.updated_at) < Date.parse(have.updated_at)) return;
  all[p] = state;
  localStorage.setItem(KNOWN_KEY, JSON.stringify(all));
}
// The answer to case p as this browser knows it; `all` and `waiting` may be passed in by a
// caller that merges many cases, so that localStorage is read once, not once per case.
function merged(p, all = known(), waiting = queue.pending()) {
  const a = { agree: null, quality: null, difficulty: null, flagged: false, comment: null };
  Object.assign(a, pick(all[p] || {}));
  for (const item of waiting) {
    if (item.position !== p) continue;
    for (const [k, v] of Object.entries(pick(item.body))) if (v !== null && v !== undefined) a[k] = v;
  }
  return a;
}
function pick(o) {
  const out = {};
  for (const k of [...QUESTIONS, "flagged", "comment"]) if (k in o) out[k] = o[k];
  return out;
}
const isComplete = (a) => QUESTIONS.every((k) => a[k] !== null && a[k] !== undefined);
const isStarted = (a) => QUESTIONS.some((k) => a[k] !== null && a[k] !== undefined);
let answer = merged(position);

// ---------- save status ----------
function renderStatus() {
  const el = $("save-state");
  const waiting = queue.pending().length;
  const mine = queue.pending().filter((x) => x.position === position).length;
  let state, text;
  if (queue.status.connection === "signed-out") {
    state = "not-saved";
    text = `Not saved: ${queue.status.reason}${waiting ? ` (${waiting} kept in this browser)` : ""}`;
  } else if (refused[position]) {
    state = "not-saved"; text = `Not saved: ${refused[position]}`;
  } else if (queue.status.connection === "offline" && waiting) {
    state = "offline"; text = `Offline: ${waiting} answer${waiting === 1 ? "" : "s"} waiting to be sent`;
  } else if (mine) {
    state = "saving"; text = "Saving…";
  } else if (!isStarted(answer) && !answer.flagged && !answer.comment) {
    state = "unanswered"; text = "Not answered";
  } else {
    state = "saved"; text = "Saved";
  }
  el.dataset.state = state;
  el.textContent = text;
  el.dataset.waiting = String(waiting);
  const finished = $("finished");
  if (!finished.hidden) {
    $("finished-waiting").textContent = waiting
      ? `${waiting} answer${waiting === 1 ? " is" : "s are"} waiting to be sent: keep this page open until they are.`
      : "Everything is saved.";
  }
}
queue.on("state", renderStatus);
queue.on("saved", (item, saved) => {
  delete refused[item.position];
  remember(item.position, saved.answer);
  serverAnswered = saved.progress.answered;
  if (saved.superseded.length && item.position === position) {
    notice = `A newer answer given in another window or device was kept (${saved.superseded.join(", ")}).`;
  }
  refresh();
});
queue.on("refused", (item, reason) => {
  refused[item.position] = reason;
  refresh();
});

// A message stays until the reader answers or moves on: a save finishing meanwhile (refresh)
// must not wipe it.
function showMessage(text) { notice = text; $("message").textContent = text; }
const NOT_SHOWN = "The image has not been shown yet: this case can be graded once it is.";

// ---------- active time on each case ----------
let activeMs = 0;
let activeSince = null;
function tick() {
  if (activeSince !== null) {
    const now = performance.now();
    activeMs += now - activeSince;
    activeSince = now;
    localStorage.setItem(timeKey(position), String(Math.round(activeMs)));
  }
}
function startTiming() {
  activeMs = Number(localStorage.getItem(timeKey(position)) || 0);
  const saved = known()[position];
  if (saved && saved.active_seconds * 1000 > activeMs) activeMs = saved.active_seconds * 1000;
  activeSince = document.visibilityState === "visible" ? performance.now() : null;
}
document.addEventListener("visibilitychange", () => {
  tick();
  activeSince = document.visibilityState === "visible" ? performance.now() : null;
  if (document.visibilityState === "visible") reloadCase();  // pick up answers given elsewhere
});
setInterval(tick, 1000);

// ---------- rendering ----------
function answeredCount() {
  const all = known();
  const waiting = queue.pending();
  let n = 0;
  for (let p = 1; p <= total; p += 1) if (isComplete(merged(p, all, waiting))) n += 1;
  // before the cases are known here (no prefetch yet), the server's count is the better one
  return Object.keys(all).length >= total ? n : Math.max(n, serverAnswered);
}
function refresh() {
  answer = merged(position);
  document.querySelectorAll("#answers input[type=radio]").forEach((input) => {
    const value = answer[input.name];
    const mine = input.name === "agree" ? (value === null ? null : value ? "yes" : "no") : String(value);
    input.checked = value !== null && input.value === mine;
  });
  $("flag").setAttribute("aria-pressed", String(Boolean(answer.flagged)));
  $("flag").textContent = answer.flagged ? "Flagged for review" : "Flag for review";
  $("flag").append(Object.assign(document.createElement("kbd"), { textContent: "F" }));
  if (document.activeElement !== $("comment")) $("comment").value = answer.comment || "";
  $("next").disabled = !isComplete(answer) || !imageShown;
  $("prev").disabled = position <= 1;
  const done = answeredCount();
  $("progress-bar").value = done;
  $("progress-bar").textContent = done;
  $("message").textContent = notice;
  renderStatus();
}

function give(field, value) {
  if (!imageShown && QUESTIONS.includes(field)) {
    showMessage(NOT_SHOWN);
    return;
  }
  if (answer[field] === value) return;
  tick();
  notice = "";
  queue.enqueue(position, {
    answer_id: newId(), [field]: value, active_seconds: Math.round(activeMs) / 1000,
    client_sent_at: new Date().toISOString(),
  });
  delete refused[position];
  refresh();
  queue.flush();
}

document.querySelectorAll("#answers input[type=radio]").forEach((input) => {
  input.addEventListener("change", () => {
    const value = input.name === "agree" ? input.value === "yes" : Number(input.value);
    give(input.name, value);
    if (!imageShown) refresh();  // undo the click: nothing was given
  });
});
$("flag").addEventListener("click", () => give("flagged", !answer.flagged));
$("comment").addEventListener("change", () => give("comment", $("comment").value.trim()));

// ---------- one case ----------
let showToken = 0;
async function showCase(p) {
  const token = ++showToken;
  position = p;
  root.dataset.position = String(p);
  root.dataset.ready = "false";
  document.title = `${caseName(p)} / ${total} · piestudy`;
  $("case-title").textContent = caseName(p);
  $("practice-badge").hidden = p > practiceCount;
  $("progress-text").textContent = `${p} / ${total}`;
  $("image").setAttribute("aria-label", `Chest X-ray of ${caseName(p).toLowerCase()}`);
  $("finished").hidden = true;
  startTiming();
  imageShown = false;
  notice = "";
  refresh();
  queue.flush();  // deliver anything left from earlier cases, pages or sessions
  const response = await cachedGet(`/api/reader/cases/${p}`);
  if (token !== showToken) return;
  if (response === null) {
    notice = "This case has not been fetched to this browser yet, and the network is down: it shows once the connection is back.";
    $("labels").replaceChildren();
    viewer.clear();
    refresh();
    return;
  }
  if (response.status === 401) {
    const problem = await response.json().catch(() => ({}));
    queue.status.connection = "signed-out";
    queue.status.reason = problem.error || "this reading session has ended";
    refresh();
    return;
  }
  caseData = await response.json();
  remember(p, caseData.answer);
  $("labels").replaceChildren(...caseData.labels.map((name) => Object.assign(document.createElement("li"), { textContent: name })));
  startTiming();
  refresh();
  await showImage(p, token);
  root.dataset.ready = "true";
}

async function showImage(p, token) {
  $("image-error").hidden = true;
  // fetched ahead: the full rendering alone, at once (no display copy first)
  const ahead = caseData.rendering ? await cacheMatch(fullUrl(p)).catch(() => null) : null;
  if (token !== showToken) return;
  let loaded = false;
  if (ahead && ahead.ok) {
    loaded = await viewer.show(null, { info: caseData.rendering, image: await ahead.blob() });
  } else {
    let response = null;
    try {
      response = await cachedImage(`/api/reader/cases/${p}/image?size=display`);
    } catch (err) {
      response = null;
    }
    if (token !== showToken) return;
    if (response === null || !response.ok) {
      imageFailed(response === null ? ": the network is down and it was not fetched before" : ` (${response.status})`);
      return;
    }
    loaded = await viewer.show(await response.blob());
  }
  if (token !== showToken) return;
  if (!loaded) { imageFailed(": the file could not be decoded"); return; }
  imageShown = true;
  root.dataset.image = "shown";
  if (notice === NOT_SHOWN) notice = "";  // it is shown now
  refresh();
  prefetchFull(p + 1);
}
function imageFailed(why) {
  imageShown = false;
  root.dataset.image = "failed";
  viewer.clear();
  $("image-error-why").textContent = why;
  $("image-error").hidden = false;
  refresh();
}
$("image-retry").addEventListener("click", () => showImage(position, showToken));

async function reloadCase() {
  if (!navigator.onLine) return;
  try {
    const response = await readerFetch(readerKey, `/api/reader/cases/${position}?prefetch=true`);
    if (response.ok) { remember(position, (await response.json()).answer); refresh(); }
  } catch (err) { /* offline: the local state stands */ }
}
// another tab of this reader saved or queued something
window.addEventListener("storage", (e) => { if (e.key === KNOWN_KEY || e.key === queue.storeKey) refresh(); });

// ---------- moving between cases ----------
function goTo(p) {
  tick();
  if (p < 1) return;
  if (p > total) { finish(); return; }
  history.pushState({ position: p }, "", `/read/cases/${p}`);
  showCase(p);
}
function goNext() {
  if (!imageShown) { showMessage(NOT_SHOWN); return; }
  if (!isComplete(answer)) { showMessage("Answer all three questions first."); return; }
  goTo(position + 1);
}
async function finish() {
  $("finished").hidden = false;
  renderStatus();
  // The end page is fetched from the server: go there once everything is delivered.
  if (await queue.drain(3000)) window.location.href = "/read/done";
}
window.addEventListener("popstate", (e) => showCase(e.state?.position || Number(location.pathname.split("/").pop())));
$("next").addEventListener("click", goNext);
$("prev").addEventListener("click", () => goTo(position - 1));

// ---------- the list of cases ----------
async function openCaseList() {
  const response = await cachedGet("/api/reader/cases");
  const listed = response && response.ok ? (await response.json()).cases : [];
  const items = [];
  const all = known();
  const waiting = queue.pending();
  let done = 0, flagged = 0;
  for (let p = 1; p <= total; p += 1) {
    const a = merged(p, all, waiting);
    const server = listed.find((c) => c.position === p);
    const complete = isComplete(a) || Boolean(server?.complete);
    const flag = Boolean(a.flagged);
    done += complete; flagged += flag;
    const button = Object.assign(document.createElement("button"), { type: "button", className: "link" });
    button.textContent = `${caseName(p)}: ${complete ? "done" : "not done"}${flag ? ", flagged" : ""}`;
    button.dataset.case = String(p);
    button.dataset.state = complete ? "done" : "not-done";
    if (flag) button.dataset.flagged = "true";
    if (p === position) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => {
      $("case-list").close();
      $("stage").focus();  // not back on a button, where Enter would press it
      goTo(p);
    });
    const item = document.createElement("li");
    item.append(button);
    items.push(item);
  }
  $("case-list-items").replaceChildren(...items);
  $("case-list-summary").textContent = `${done} of ${total} done, ${flagged} flagged.`;
  $("case-list").showModal();
  $("case-list-items").querySelector("[aria-current]")?.focus();
}
$("cases-toggle").addEventListener("click", openCaseList);
$("help-toggle").addEventListener("click", () => $("help").showModal());

// ---------- keyboard ----------
const DIFFICULTY_KEYS = { q: 1, w: 2, e: 3, r: 4, t: 5 };
// A closed dialog gives the keyboard back to the image, never to a button inside it (where
// Enter would press that button, not go to the next case).
for (const id of ["help", "case-list"]) {
  $(id).addEventListener("close", () => {
    if (!document.activeElement || document.activeElement === document.body || $(id).contains(document.activeElement)) $("stage").focus();
  });
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if ($("help").open || $("case-list").open) {
    if (e.key === "?" && $("help").open) { e.preventDefault(); $("help").close(); $("stage").focus(); }
    return;  // a dialog has the keyboard; Esc closes it
  }
  if (t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement
      || (t instanceof HTMLInputElement && (t.type === "text" || t.type === "number"))) {
    if (e.key === "Escape") t.blur();  // typing a comment or a window: the keys are its own
    return;
  }
  // The distance tool takes the arrows, Enter and Esc while it is on; Shift + arrows pan.
  if ((viewer.modal() && ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Enter", "Escape"].includes(e.key))
      || (e.shiftKey && e.key.startsWith("Arrow"))) {
    if (viewer.key(e.key.toLowerCase(), e)) { e.preventDefault(); return; }
  }
  const onRadio = t instanceof HTMLInputElement && t.type === "radio";
  const onRange = t instanceof HTMLInputElement && t.type === "range";
  if (e.key.startsWith("Arrow")) {
    if (onRange) return;
    e.preventDefault();  // never let an arrow change an answer
    if (onRadio) return;
    if (e.key === "ArrowRight") goNext();
    else if (e.key === "ArrowLeft") goTo(position - 1);
    return;
  }
  if (e.key === "Enter") {
    // the button's own action (a button of a dialog already closed has none)
    if ((t instanceof HTMLButtonElement || t instanceof HTMLAnchorElement) && !t.closest("dialog:not([open])")) return;
    e.preventDefault();
    goNext();
    return;
  }
  const k = e.key.toLowerCase();
  if (k === "y") give("agree", true);
  else if (k === "n") give("agree", false);
  else if ("12345".includes(k) && k.length === 1) give("quality", Number(k));
  else if (k in DIFFICULTY_KEYS) give("difficulty", DIFFICULTY_KEYS[k]);
  else if (k === "f") give("flagged", !answer.flagged);
  else if (k === "c") $("comment").focus();
  else if (k === "l") openCaseList();
  else if (k === "?") $("help").showModal();
  else if (viewer.key(k, e)) { /* a viewer key */ }
  else return;
  e.preventDefault();
});

// ---------- prefetch: every case and its image, for reading offline ----------
// Every case in one request, kept as each case's own copy; then each case's full rendering (the
// image the reader reads, windowed on its data, offline too), one at a time, the next cases
// first: one image request a case, as reading them would make. The next AHEAD come at once;
// the rest are paced (PACE_MS apart at least, longer when the server is slow to answer), so
// that a room of readers starting together does not queue each other's answers behind its
// fetching: 40 cases are all here within a minute or two, far ahead of anyone reading them.
const AHEAD = 2;
const PACE_MS = 1500;
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
async function prefetchAll() {
  let cases;
  try {
    const response = await readerFetch(readerKey, "/api/reader/cases/ahead");
    if (!response.ok) return;
    cases = (await response.json()).cases;
  } catch (err) {
    return;  // offline: what is here is what can be read
  }
  const all = known();
  for (const c of cases) {
    const body = JSON.stringify(c);
    await cachePut(`/api/reader/cases/${c.position}`, new Response(body, { headers: { "content-type": "application/json" } }));
    if (!all[c.position]) remember(c.position, c.answer);
  }
  const order = cases.filter((c) => c.position > position).concat(cases.filter((c) => c.position <= position));
  let fetched = 0;
  let pause = 0;
  for (const c of order) {
    try {
      if (c.rendering && !(await cacheMatch(fullUrl(c.position)))) {
        if (fetched >= AHEAD) await sleep(pause);
        const started = performance.now();
        const response = await fetchOnce(fullUrl(c.position));
        if (!response) return;  // offline
        pause = Math.max(PACE_MS, 20 * (performance.now() - started));
      }
    } catch (err) {
      return;
    }
    fetched += 1;
    root.dataset.prefetched = String(fetched);
  }
  refresh();
}

history.replaceState({ position }, "", `/read/cases/${position}`);
showCase(position).then(prefetchAll);
