// The "Print" button of the recovery codes page: shown only where this script runs.
for (const b of document.querySelectorAll("[data-print]")) {
  b.hidden = false;
  b.addEventListener("click", () => window.print());
}
