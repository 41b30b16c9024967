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

/* Date-time fields: Django's date-time shortcuts note "You are N hours ahead of server time."
 * when the browser's clock is in another zone. The admin runs in the company's zone, so the
 * time it calls the server's is the company's: the field's own note (rendered hidden by
 * ZonedSplitDateTime, in the user's language) says so instead, with the hours measured here.
 * A date alone or a time of day alone gets no note: neither is ahead or behind of anything.
 * Platform staff really do work in the server's zone; their fields keep Django's note. */
(function () {
  "use strict";
  var shortcuts = window.DateTimeShortcuts;
  if (!shortcuts) return;
  var djangoNote = shortcuts.addTimezoneWarning;
  shortcuts.addTimezoneWarning = function (input) {
    if (!input.closest("p.datetime")) return;
    var block = input.closest(".zoned-datetime");
    if (block && block.querySelector(".zone-note-elsewhere")) return; // another field of the form says it
    var note = block && block.querySelector(".zone-note");
    if (!note) return djangoNote.call(shortcuts, input);
    // Seconds the browser's clock is ahead of the company's (DateTimeShortcuts.init sets it).
    var hours = Number((shortcuts.timezoneOffset / 3600).toFixed(2));
    if (!hours || !note.hidden) return; // same zone, or the field's other input already noted it
    var count = Math.abs(hours);
    var form = new Intl.PluralRules(document.documentElement.lang || "en").select(count);
    var direction = hours > 0 ? "ahead" : "behind";
    var message = note.getAttribute("data-" + direction + "-" + form) || note.getAttribute("data-" + direction + "-other");
    note.textContent = message.replace("%(hours)s", count.toLocaleString(document.documentElement.lang || "en"));
    note.hidden = false;
  };
})();
