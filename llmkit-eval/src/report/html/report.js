// Progressive enhancement only: with scripts off every case is listed and readable. Errors are
// recorded on <html data-js-errors> so a headless browser test can fail on them.
(function () {
  "use strict";
  var root = document.documentElement;
  function fail(message) {
    var prev = root.getAttribute("data-js-errors");
    root.setAttribute("data-js-errors", (prev ? prev + " | " : "") + message);
  }
  window.addEventListener("error", function (e) { fail(String(e.message)); });
  try {
    var search = document.getElementById("case-search");
    var status = document.getElementById("case-status");
    var count = document.getElementById("case-count");
    var cases = Array.prototype.slice.call(document.querySelectorAll("details.case"));
    var apply = function () {
      var text = search.value.trim().toLowerCase();
      var want = status.value;
      var shown = 0;
      cases.forEach(function (c) {
        var tags = (c.getAttribute("data-status") || "").split(" ");
        var ok = (want === "all" || tags.indexOf(want) >= 0) &&
          (text === "" || c.textContent.toLowerCase().indexOf(text) >= 0);
        c.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = shown + " of " + cases.length + " cases shown";
    };
    // `report.html?q=refund&status=fail` opens with that filter, so a filtered view can be linked.
    var params = new URLSearchParams(window.location.search);
    if (params.has("q")) { search.value = params.get("q"); }
    if (params.has("status")) { status.value = params.get("status"); }
    if (status.selectedIndex < 0) { status.value = "all"; }
    search.addEventListener("input", apply);
    status.addEventListener("change", apply);
    var form = document.getElementById("case-filters");
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    form.hidden = false;
    var openTarget = function () {
      var id = decodeURIComponent(window.location.hash.slice(1));
      var el = id ? document.getElementById(id) : null;
      if (el && el.tagName === "DETAILS") { el.open = true; }
    };
    window.addEventListener("hashchange", openTarget);
    openTarget();
    apply();
    root.setAttribute("data-js", "ready");
  } catch (e) {
    fail(String(e));
  }
})();
