// Welcome and end pages: deliver this reader's answers left from earlier pages or sessions
// (never another reader's: the queue is this reader's own), and focus the main action.
import { createQueue } from "./queue.js";

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
