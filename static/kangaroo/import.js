// The subject import: a submit button says it is working and cannot be pressed twice, and
// a running job's progress bar follows the job until the page can show its result.
"use strict";

document.addEventListener("submit", (event) => {
  const button = event.target.querySelector("input[type=submit][data-busy-label]");
  if (!button) return;
  // Disabled after this turn, so the browser still sends the form with the button's value.
  setTimeout(() => {
    button.disabled = true;
    button.value = button.dataset.busyLabel;
  }, 0);
});

const progress = document.getElementById("import-progress");
if (progress) {
  const bar = progress.querySelector("progress");
  const text = progress.querySelector(".progress-text");
  const poll = async () => {
    try {
      const answer = await fetch(progress.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (answer.ok) {
        const status = await answer.json();
        if (status.finished) {
          window.location.reload();
          return;
        }
        if (status.total) {
          bar.max = status.total;
          bar.value = status.done;
          text.textContent = `${status.done.toLocaleString()} / ${status.total.toLocaleString()} (${status.percent}%)`;
        } else {
          text.textContent = status.state_label;
        }
      }
    } catch (error) {
      // A dropped request is tried again on the next tick.
    }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}
