// Refresh the attendee table every few seconds, keeping the current search.
(function () {
  "use strict";
  var box = document.getElementById("attendees");
  if (!box || !window.fetch) return;
  var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 5;
  var input = document.getElementById("q");

  function refresh() {
    if (document.hidden) return;
    var url = box.getAttribute("data-live-url") + "?q=" + encodeURIComponent(input ? input.value : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) box.innerHTML = html; })
      .catch(function () { /* offline for a moment: try again next time */ });
  }

  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
  if (input) input.addEventListener("input", refresh);
})();
