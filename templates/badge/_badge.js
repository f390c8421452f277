{% include "_scanner.js" %}
// My badge: keep requests, connections and suggestions fresh, and scan other badges.
(function () {
  "use strict";

  // ---- live refresh: my own list (new requests appear without a reload) and, more
  // slowly, the people to meet; each half asks for itself with the version it shows.
  var liveStatus = document.getElementById("live-status");
  var keepFresh = function (part, changed) {
    if (!part || !window.fetch) return;
    var seconds = parseInt(part.getAttribute("data-refresh-seconds"), 10) || 5;
    var version = part.getAttribute("data-version") || "";
    var refresh = function () {
      if (document.hidden) return;
      // Never replace a field someone is typing in, nor a choice they have opened
      // ("Remove or block ..."); a link or button merely left focused does not count.
      var active = document.activeElement;
      if (active && part.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return;
      if (part.querySelector("details[open]")) return;
      // The version this part shows: unchanged, the server answers 304 and nothing moves.
      var headers = version ? { "If-None-Match": version } : {};
      fetch(part.getAttribute("data-live-url"), { credentials: "same-origin", headers: headers })
        .then(function (response) {
          if (response.status !== 200) return null;
          version = response.headers.get("ETag") || "";
          return response.text();
        })
        .then(function (html) {
          if (html === null) return;
          part.innerHTML = html;
          if (changed) changed();
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    };
    setInterval(refresh, seconds * 1000);
    document.addEventListener("visibilitychange", refresh);
  };
  var live = document.getElementById("live");
  var requestCount = function () { return live.querySelectorAll(".requests li").length; };
  if (live) {
    var requests = requestCount();
    keepFresh(live, function () {
      // Announce a new request; the rest of the list changes quietly.
      var now = requestCount();
      if (now > requests && liveStatus) liveStatus.textContent = "New request to connect";
      requests = now;
    });
  }
  keepFresh(document.getElementById("people"), null);

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
