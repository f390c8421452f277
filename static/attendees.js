// Refresh the attendee page every few seconds, asking only for what changed since the
// version it shows (the server answers 304 when nothing did), keeping the current search.
(function () {
  "use strict";
  var box = document.getElementById("attendees");
  if (!box || !window.fetch) return;
  var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 5;
  var version = box.getAttribute("data-version") || "";
  var input = document.getElementById("q");
  var searched = input ? input.value : "";
  var status = document.getElementById("attendees-status");
  var counts = box.querySelector(".count");
  var lastCounts = counts ? counts.textContent : "";
  var page = new URLSearchParams(window.location.search).get("page") || "1";

  function announce() {
    var now = box.querySelector(".count");
    if (!status || !now || now.textContent === lastCounts) return;
    lastCounts = now.textContent;
    status.textContent = lastCounts;
  }

  // Put changed lines in place: a line shown is replaced; a new arrival goes on top of
  // the first page, which keeps its length; the line of someone no longer here goes.
  function merge(html) {
    var incoming = document.createElement("div");
    incoming.innerHTML = html;
    var count = incoming.querySelector(".count");
    var table = box.querySelector("table.attendees");
    if (!table) { box.innerHTML = html; return; }
    var body = table.tBodies[0];
    var firstPage = table.getAttribute("data-page") === "1";
    var changes = incoming.querySelector("table.changes");
    var removed = changes ? (changes.getAttribute("data-removed") || "").split(" ") : [];
    for (var j = 0; j < removed.length; j++) {
      var gone = removed[j] && body.querySelector('tr[data-id="' + removed[j] + '"]');
      if (gone) body.removeChild(gone);
    }
    var rows = incoming.querySelectorAll("table.changes tr");
    for (var i = rows.length - 1; i >= 0; i--) {
      var shown = body.querySelector('tr[data-id="' + rows[i].getAttribute("data-id") + '"]');
      if (shown) body.replaceChild(rows[i], shown);
      else if (firstPage) body.insertBefore(rows[i], body.firstChild);
    }
    var length = parseInt(box.getAttribute("data-page-size"), 10) || 50;
    while (firstPage && body.rows.length > length) body.deleteRow(-1);
    if (count) box.querySelector(".count").replaceWith(count);
  }

  // The lines shown, for the server to say which of them are gone.
  function shownLines() {
    var lines = box.querySelectorAll("table.attendees tr[data-id]");
    var ids = [];
    for (var k = 0; k < lines.length; k++) ids.push(lines[k].getAttribute("data-id"));
    return ids.length ? "&shown=" + ids.join(",") : "";
  }

  function refresh() {
    if (document.hidden) return;
    var query = input ? input.value : "";
    // A new search starts from the whole first page, not from what changed.
    if (query !== searched) { version = ""; searched = query; page = "1"; }
    // With no table shown yet (no one here, or no one matching), a change brings it whole.
    var whole = box.querySelector("table.attendees") ? "" : "&whole=1";
    var url = box.getAttribute("data-live-url") + "?q=" + encodeURIComponent(query) +
      "&page=" + encodeURIComponent(page) + whole + shownLines();
    var headers = { Accept: "text/html" };
    if (version) headers["If-None-Match"] = version;
    fetch(url, { credentials: "same-origin", headers: headers })
      .then(function (response) {
        if (response.status !== 200) return null;
        var held = version;
        version = response.headers.get("ETag") || "";
        return response.text().then(function (html) { return [held, html]; });
      })
      .then(function (answer) {
        if (answer === null) return;
        if (answer[0]) merge(answer[1]);
        else box.innerHTML = answer[1];
        announce();
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }

  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
  if (input) input.addEventListener("input", refresh);
})();
