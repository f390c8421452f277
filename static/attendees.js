// Refresh the attendee table every few seconds, keeping the current search.
(function () {
  "use strict";
  var box = document.getElementById("attendees");
  if (!box || !window.fetch) return;
  var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 5;
  var input = document.getElementById("q");
  var status = document.getElementById("attendees-status");
  var counts = box.querySelector(".count");
  var lastCounts = counts ? counts.textContent : "";

  function announce() {
    var now = box.querySelector(".count");
    if (!status || !now || now.textContent === lastCounts) return;
    lastCounts = now.textContent;
    status.textContent = lastCounts;
  }

  function refresh() {
    if (document.hidden) return;
    var url = box.getAttribute("data-live-url") + "?q=" + encodeURIComponent(input ? input.value : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        box.innerHTML = html;
        announce();
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }

  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
  if (input) input.addEventListener("input", refresh);
})();
