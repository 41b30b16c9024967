// The admin's bulk photo upload: buttons stay disabled while working, and the progress bar
// follows the store job, then the face engine, by polling the page's progress view.
"use strict";

function busy(form) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("input[type=submit]");
    if (button) {
      // Disabled after this turn, so the browser still sends the form.
      setTimeout(() => {
        button.disabled = true;
        if (button.dataset.busyLabel) button.value = button.dataset.busyLabel;
      }, 0);
    }
  });
}

function follow(box) {
  const bar = document.getElementById("bulk-progress-bar");
  const text = document.getElementById("bulk-progress-text");
  const button = document.getElementById("bulk-working");
  const state = document.getElementById("bulk-state");
  const rows = document.querySelectorAll("#bulk-files tbody tr");
  let wait = 1000;

  async function tick() {
    let data;
    try {
      const response = await fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      data = await response.json();
      wait = 1000;
    } catch (error) {
      wait = Math.min(wait * 2, 15000); // a blip: try again, more slowly
      setTimeout(tick, wait);
      return;
    }
    bar.max = Math.max(data.total, 1);
    // Stored and enrolled: full, even when no photo was left to store.
    bar.value = !data.working && data.state === "stored" ? bar.max : data.done;
    text.textContent = data.phase;
    state.textContent = data.state_text;
    data.files.forEach((file, index) => {
      const row = rows[index];
      if (!row) return;
      row.dataset.status = file.status;
      row.querySelector(".bulk-message").textContent = file.message;
      row.querySelector(".bulk-photo-status").textContent = file.photo_status || "—";
    });
    box.dataset.working = data.working ? "1" : "";
    if (data.working) {
      setTimeout(tick, wait);
    } else {
      button.textContent = button.dataset.doneLabel || button.textContent;
      box.classList.add("finished");
    }
  }

  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("#bulk-upload-form, form.bulk-confirm").forEach(busy);
  const box = document.getElementById("bulk-progress");
  if (box) follow(box);
});
