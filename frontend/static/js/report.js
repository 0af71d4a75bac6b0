// The report's print button: shown only where this script runs (not in a downloaded copy).
const button = document.getElementById("print");
if (button) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
