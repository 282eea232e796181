// The datasource wizard: uploads a CSV file as the raw request body, and
// applies a changed header choice at once. Everything else is plain form
// submission, so the wizard also works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("wizard");
  if (!form) return;

  const headerButton = document.getElementById("header-button");
  if (headerButton) {
    headerButton.hidden = true;
    for (const radio of form.querySelectorAll('input[name="header"]')) {
      radio.addEventListener("change", () => form.requestSubmit(headerButton));
    }
  }

  const file = document.getElementById("upload-file");
  if (!file) return;
  const status = document.getElementById("upload-status");
  const read = document.getElementById("read-button");
  const limit = Number(form.dataset.uploadLimit);
  const say = (text, bad) => {
    status.textContent = text;  // file names and server messages stay text
    status.classList.toggle("problem", Boolean(bad));
  };
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    if (chosen.size > limit) {
      say(`${chosen.name} is larger than this server accepts (${limit.toLocaleString()} bytes at most).`, true);
      return;
    }
    say(`Uploading ${chosen.name} (${chosen.size.toLocaleString()} bytes)…`, false);
    read.disabled = true;
    try {
      const response = await fetch(form.dataset.uploadUrl, {
        method: "POST", body: chosen, credentials: "same-origin",
        headers: {"Content-Type": "text/csv", "X-CSRF-Token": form.elements.csrf.value},
      });
      let answer = {};
      try { answer = await response.json(); } catch (error) { /* an HTML error page */ }
      if (!response.ok) {
        // The console answers {error}; the HTTP layer's own refusals (413, 408) are AWS JSON errors.
        say(answer.error || answer.message || `The upload was refused (HTTP ${response.status}). Reload the page and try again.`, true);
        return;
      }
      form.elements.upload_uri.value = answer.uri;
      form.elements.upload_name.value = chosen.name;
      say(`Uploaded ${chosen.name}. Reading it…`, false);
      form.requestSubmit(read);
    } catch (error) {
      say("The upload failed: the server could not be reached.", true);
    } finally {
      read.disabled = false;
    }
  });
});
