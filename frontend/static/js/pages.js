// Welcome and end pages: deliver this reader's answers left from earlier pages or sessions
// (never another reader's: the queue is this reader's own), and focus the main action.
import { createQueue, readerFetch } from "./queue.js";

const target = document.querySelector("[autofocus]");
if (target) target.focus();
const owner = document.querySelector("[data-reader-key]");
if (owner) {
  const queue = createQueue(owner.dataset.readerKey);
  const waiting = queue.pending().length;
  if (waiting) {
    const note = document.getElementById("waiting");
    if (note) {
      note.hidden = false;
      note.textContent = `Sending ${waiting} answer${waiting === 1 ? "" : "s"} kept in this browser…`;
    }
    // Something was answered but not yet delivered: deliver it, then show the true progress.
    queue.drain(30000).then((delivered) => { if (delivered) window.location.reload(); });
  }
}

// The reader profile (asked once, on the welcome page): strict values, as the server checks.
const profile = document.getElementById("profile");
if (profile && owner) {
  profile.addEventListener("submit", async (event) => {
    event.preventDefault();
    const note = document.getElementById("profile-message");
    const answers = {};
    for (const label of profile.querySelectorAll("[data-profile]")) {
      const input = label.querySelector("input, select");
      const text = input.value.trim();
      if (!text) continue;
      answers[label.dataset.profile] = label.dataset.kind === "integer" ? Number(text) : text;
    }
    const invalid = [...profile.querySelectorAll("input, select")].find((input) => !input.checkValidity());
    if (invalid) {
      note.textContent = `${invalid.closest("label").firstChild.textContent.trim()}: ${invalid.validationMessage}`;
      invalid.focus();
      return;
    }
    note.textContent = "Saving…";
    try {
      const response = await readerFetch(owner.dataset.readerKey, "/api/reader/profile", {
        method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ answers }),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) { note.textContent = (data && data.error) || `Not saved (${response.status})`; return; }
      window.location.href = data.next_position ? `/read/cases/${data.next_position}` : "/read/done";
    } catch {
      note.textContent = "Not saved: the server cannot be reached. Try again when the network is back.";
    }
  });
}
