// Small helpers for the organiser's pages; each page works without them.
(function () {
  "use strict";

  // A new event's time zone: the browser's own, when it is one the list knows.
  var zone = document.querySelector("input[data-browser-timezone]");
  if (zone && window.Intl && Intl.DateTimeFormat) {
    var mine = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var known = zone.list && Array.prototype.some.call(zone.list.options, function (option) {
      return option.value === mine;
    });
    if (mine && known) zone.value = mine;
  }

  // The pictures of the room: loaded after the page, and redrawn now and then.
  var box = document.getElementById("pictures");
  if (!box || !window.fetch) return;
  var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 60;
  var version = "";
  function load() {
    if (document.hidden) return;
    var headers = { Accept: "text/html" };
    if (version) headers["If-None-Match"] = version;  // 304 while nothing changed
    fetch(box.getAttribute("data-live-url"), { credentials: "same-origin", headers: headers })
      .then(function (response) {
        if (!response.ok) return null;
        version = response.headers.get("ETag") || "";
        return response.text();
      })
      .then(function (html) { if (html !== null) box.innerHTML = html; })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  load();
  setInterval(load, seconds * 1000);
})();
