/* The export page's "select all" box (a listener, not an inline handler: the
 * Content-Security-Policy allows no inline script). */
(function () {
  "use strict";
  var toggle = document.getElementById("select-all-toggle");
  if (!toggle) return;
  var boxes = function () {
    return document.querySelectorAll('.selectable-field-export-row input[type="checkbox"]:not(.select-toggle)');
  };
  toggle.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = toggle.checked; });
  });
})();
