/* Kangaroo's admin behaviours, as a file (the Content-Security-Policy allows no inline script).
 * Copy buttons: a button with data-copy-target="<id>" copies that element's text. */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source) return;
    var text = source.textContent.trim();
    var done = function () {
      button.textContent = button.dataset.copied || button.textContent;
      button.classList.add("copied");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(source); });
    } else {
      select(source); // plain HTTP: leave the key selected for Ctrl+C
      try { if (document.execCommand("copy")) done(); } catch (ignored) { /* selected is enough */ }
    }
  });
  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
})();
