/* The dashboard's "Expected today" panel: fetched again from the server when the live stream
 * shows a visitor recognised (the "kangaroo:events" event of live.js), when the host is
 * changed, and every minute (a visit cancelled or a photo enrolled meanwhile). */
(function () {
  "use strict";
  if (window.kangarooExpected) return; // the panel's HTML, swapped in, brings this script again
  var REFRESH_MS = 60000;
  var pending = null;
  var again = null;
  // Only the answer to the latest request is shown: an automatic refresh sent before the host
  // was changed may answer after the one the change sent, and must not undo the choice.
  var latest = 0;

  function panel() { return document.getElementById("expected-panel"); }

  function host() {
    var select = panel() && panel().querySelector("[data-expected-host]");
    return select ? select.value : "";
  }

  function refresh() {
    var current = panel();
    if (!current) return;
    var url = current.dataset.refreshUrl + "?host=" + encodeURIComponent(host());
    var request = ++latest;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (!html || request !== latest) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#expected-panel");
        if (fresh && panel()) panel().replaceWith(fresh);
      })
      .catch(function () { /* the next refresh tries again */ });
  }

  function soon() {
    // A batch of recognitions refreshes once, and once more a little later: the live message
    // may come before the server has marked the visit arrived (both follow the same commit).
    clearTimeout(pending);
    clearTimeout(again);
    pending = setTimeout(refresh, 500);
    again = setTimeout(refresh, 3000);
  }

  document.addEventListener("kangaroo:events", function (message) {
    var visitorSeen = (message.detail || []).some(function (event) {
      return (event.kind === "recognized" || event.kind === "checked_in") && event.subject &&
        event.subject.type === "visitor";
    });
    if (visitorSeen) soon();
  });
  document.addEventListener("change", function (changed) {
    if (changed.target.matches && changed.target.matches("[data-expected-host]")) refresh();
  });
  setInterval(refresh, REFRESH_MS);
  window.kangarooExpected = { refresh: refresh };
})();
