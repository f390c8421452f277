{% include "_scanner.js" %}
// The door desk: keep the count fresh, and say whose badge the camera reads.
(function () {
  "use strict";
  var count = document.getElementById("door-count");
  if (count && window.fetch) {
    var seconds = parseInt(count.getAttribute("data-refresh-seconds"), 10) || 5;
    var refresh = function () {
      if (document.hidden) return;
      fetch(count.getAttribute("data-live-url"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) count.innerHTML = html; })
        .catch(function () { /* offline for a moment: try again next time */ });
    };
    setInterval(refresh, seconds * 1000);
    document.addEventListener("visibilitychange", refresh);
  }

  var lookup = document.getElementById("lookup");
  var answer = document.getElementById("scanned");
  if (!lookup || !window.fetch || !window.FormData) return;
  rapportScanner(function (text, scanner) {
    var data = new FormData(lookup);
    data.set("code", text);
    data.set("partial", "1");
    scanner.say("Read a code. Looking it up\u2026");
    scanner.stop();
    fetch(lookup.action, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { scanner.say("That didn't work: try again."); return; }
        answer.innerHTML = html;
        var heading = answer.querySelector("h3, p");
        if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
      })
      .catch(function () { scanner.say("No connection: try again in a moment."); });
    return true;
  });
})();
