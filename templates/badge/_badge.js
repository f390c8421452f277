{% include "_scanner.js" %}
// My badge: keep requests, connections and suggestions fresh, and scan other badges.
(function () {
  "use strict";

  // ---- live refresh: new requests appear without a reload
  var live = document.getElementById("live");
  var liveStatus = document.getElementById("live-status");
  var requestCount = function () { return live.querySelectorAll(".requests li").length; };
  if (live && window.fetch) {
    var requests = requestCount();
    var seconds = parseInt(live.getAttribute("data-refresh-seconds"), 10) || 5;
    var version = live.getAttribute("data-version") || "";
    var refresh = function () {
      if (document.hidden) return;
      // Never replace a form someone is typing in.
      if (live.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
      // The version this page shows: unchanged, the server answers 304 and nothing moves.
      var headers = version ? { "If-None-Match": version } : {};
      fetch(live.getAttribute("data-live-url"), { credentials: "same-origin", headers: headers })
        .then(function (response) {
          if (response.status !== 200) return null;
          version = response.headers.get("ETag") || "";
          return response.text();
        })
        .then(function (html) {
          if (html === null) return;
          live.innerHTML = html;
          // Announce a new request; the rest of the list changes quietly.
          var now = requestCount();
          if (now > requests && liveStatus) liveStatus.textContent = "New request to connect";
          requests = now;
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    };
    setInterval(refresh, seconds * 1000);
    document.addEventListener("visibilitychange", refresh);
  }

  // ---- in-page scanner: follow a code only when it is a badge on this very site
  rapportScanner(function (text, scanner) {
    var url;
    try { url = new URL(text, "http://invalid.invalid"); } catch (e) { url = null; }
    if (url && url.origin === window.location.origin && /^\/b\/[\w-]+$/.test(url.pathname)) {
      scanner.say("Found a badge. Opening it\u2026");
      scanner.stop();
      window.location.assign(url.pathname);
      return true;
    }
    scanner.say("That code isn't a badge from this event: " + text);
    return false;
  });
})();
