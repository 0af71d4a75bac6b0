// Welcome and end pages: deliver answers left from earlier pages, and focus the main action.
import { drain, pending } from "./queue.js";

const target = document.querySelector("[autofocus]");
if (target) target.focus();
if (pending().length) {
  // Something was answered but not yet delivered: deliver it, then show the true progress.
  drain(30000).then((delivered) => { if (delivered) window.location.reload(); });
}
