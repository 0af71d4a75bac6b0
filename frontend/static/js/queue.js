// The reader's answer queue, kept in localStorage so that an answer survives network failures,
// server restarts and closed tabs; each answer carries its own id, so a retry never duplicates.

const QUEUE_KEY = "piestudy.answerQueue";
export const pending = () => JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
const store = (q) => localStorage.setItem(QUEUE_KEY, JSON.stringify(q));

export function newId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function enqueue(position, body) {
  store([...pending(), { position, body }]);
}

const listeners = { state: () => {}, saved: () => {}, problem: () => {} };
export function on(name, fn) { listeners[name] = fn; }

let flushing = false;
let retryDelay = 500;

export async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    // Read the stored queue on every pass: answers given while a request is in flight are
    // appended to it and must not be left behind.
    while (pending().length) {
      const item = pending()[0];
      listeners.state("saving");
      let response = null;
      try {
        response = await fetch(`/api/reader/cases/${item.position}/answer`, {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify(item.body), credentials: "same-origin",
        });
      } catch (err) {
        response = null;  // the network or the server is down: keep the answer, retry
      }
      if (response === null || response.status >= 500 || response.status === 429) {
        listeners.state("retrying");
        setTimeout(flush, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 10000);
        return;
      }
      retryDelay = 500;
      store(pending().filter((x) => x.body.answer_id !== item.body.answer_id));
      if (response.ok) {
        listeners.saved(await response.json());
      } else {
        const problem = await response.json().catch(() => ({ error: response.statusText }));
        listeners.problem(response.status, problem.error || `could not save (${response.status})`);
      }
    }
    listeners.state("saved");
  } finally {
    flushing = false;
  }
}

// Resolves true once everything is delivered, false if that takes longer than `ms`.
export async function drain(ms = 5000) {
  const until = Date.now() + ms;
  flush();
  while (pending().length || flushing) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

window.addEventListener("online", flush);
