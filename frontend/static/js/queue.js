// A reader's answer queue, kept in localStorage so that an answer survives network failures,
// server restarts and closed tabs; each answer carries its own id, so a retry never duplicates.
//
// Everything here is keyed by the reader's opaque key (ReaderMe.reader_key), never by the
// browser alone: on a shared workstation several readers open their links in one browser, and
// one reader's waiting answers must never be shown to, or sent as, another. Each request says
// whose page sent it (x-reader-key); the server refuses a page whose reader is not the one
// signed in, and the answer stays queued until its own reader signs in here again.

const KEY_HEADER = "x-reader-key";

export function newId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// A fetch made as `readerKey`: same-origin credentials and the key header.
export function readerFetch(readerKey, url, init = {}) {
  return fetch(url, {
    ...init, credentials: "same-origin",
    headers: { ...(init.headers || {}), [KEY_HEADER]: readerKey },
  });
}

export function createQueue(readerKey) {
  const storeKey = `piestudy.answerQueue.${readerKey}`;
  const pending = () => JSON.parse(localStorage.getItem(storeKey) || "[]");
  const store = (q) => localStorage.setItem(storeKey, JSON.stringify(q));
  const listeners = { state: () => {}, saved: () => {}, refused: () => {} };
  // online | offline | signed-out; `reason` says why we are signed out
  const status = { connection: "online", reason: null, flushing: false };
  let retryDelay = 500;
  let retryTimer = null;

  const setConnection = (connection, reason = null) => {
    status.connection = connection; status.reason = reason;
    listeners.state({ ...status, waiting: pending().length });
  };

  async function send(item) {
    try {
      return await readerFetch(readerKey, `/api/reader/cases/${item.position}/answer`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(item.body),
      });
    } catch (err) {
      return null;  // the network or the server is down: keep the answer, retry
    }
  }

  async function flushOnce() {
    // Read the stored queue on every pass: answers given while a request is in flight (in this
    // tab or another of the same reader) are appended to it and must not be left behind.
    while (pending().length) {
      const item = pending()[0];
      listeners.state({ ...status, waiting: pending().length });
      const response = await send(item);
      if (response === null || response.status >= 500 || response.status === 429) {
        setConnection("offline");
        clearTimeout(retryTimer);
        retryTimer = setTimeout(flush, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 10000);
        return;
      }
      retryDelay = 500;
      if (response.status === 401) {
        // Not signed in as this reader here (ended, withdrawn, or another reader's link was
        // opened since): keep every answer; they go out when this reader signs in again.
        const problem = await response.json().catch(() => ({}));
        setConnection("signed-out", problem.error || "this reading session has ended");
        return;
      }
      // Read the answer before the item leaves the queue, and hand it on in the same turn: in
      // between, the page would know the answer from neither and show it as not given.
      const data = await response.json().catch(() => ({ error: response.statusText }));
      store(pending().filter((x) => x.body.answer_id !== item.body.answer_id));
      if (response.ok) {
        if (status.connection !== "online") setConnection("online");
        listeners.saved(item, data);
      } else {
        listeners.refused(item, data.error || `could not save (${response.status})`);
      }
    }
    setConnection("online");
  }

  async function flush() {
    if (status.flushing) return;
    status.flushing = true;
    try {
      // One sender per reader across this browser's tabs, where the browser can arrange it.
      if (navigator.locks) await navigator.locks.request(`piestudy.flush.${readerKey}`, flushOnce);
      else await flushOnce();
    } finally {
      status.flushing = false;
    }
  }

  window.addEventListener("online", flush);
  return {
    pending,
    status,
    flush,
    on(name, fn) { listeners[name] = fn; },
    enqueue(position, body) { store([...pending(), { position, body }]); },
    // Resolves true once everything is delivered, false if that takes longer than `ms`.
    async drain(ms = 5000) {
      const until = Date.now() + ms;
      flush();
      while (pending().length || status.flushing) {
        if (Date.now() > until || status.connection === "signed-out") return false;
        await new Promise((r) => setTimeout(r, 50));
      }
      return true;
    },
    storeKey,
  };
}
