// Behaviour every console page shares. Loaded as a file: the
// Content-Security-Policy allows no inline script.
"use strict";

// A form with data-confirm asks before it submits (deletions).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// An object page whose status may still change polls it and reloads when
// it does (PENDING -> INPROGRESS -> COMPLETED, an endpoint UPDATING -> READY).
document.addEventListener("DOMContentLoaded", () => {
  const line = document.querySelector("[data-poll]");
  if (!line) return;
  const status = line.dataset.poll;
  const endpoint = line.dataset.endpoint || null;
  const settled = ["COMPLETED", "FAILED", "DELETED"];
  if (settled.includes(status) && endpoint !== "UPDATING") return;
  const url = window.location.pathname.replace(/\/$/, "") + "/status";
  const poll = async () => {
    try {
      const response = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (response.ok) {
        const now = await response.json();
        if (now.Status !== status || (endpoint !== null && now.EndpointStatus !== endpoint)) {
          window.location.reload();
          return;
        }
      }
    } catch (error) { /* the server may be restarting: try again */ }
    window.setTimeout(poll, 2000);
  };
  window.setTimeout(poll, 2000);
});
