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
    if (mine && known && mine !== zone.value) {
      zone.value = mine;
      // The suggested times were on the server's guess of a clock: put them on the browser's,
      // the next full hour for three hours, as the server suggests.
      var fields = zone.form && zone.form.elements;
      var start = new Date();
      start.setHours(start.getHours() + 1, 0, 0, 0);
      var end = new Date(start.getTime());
      end.setHours(end.getHours() + 3);
      if (fields && fields.starts_at && fields.ends_at) {
        fields.starts_at.value = wallClock(start);
        fields.ends_at.value = wallClock(end);
      }
    }
  }

  // A date as a datetime-local input holds it: YYYY-MM-DDTHH:MM on the browser's clock.
  function wallClock(date) {
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return date.getFullYear() + "-" + two(date.getMonth() + 1) + "-" + two(date.getDate()) +
      "T" + two(date.getHours()) + ":" + two(date.getMinutes());
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
