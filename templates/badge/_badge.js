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

  // ---- in-page scanner: only where a camera can be asked for
  var openButton = document.getElementById("scan-open");
  var panel = document.getElementById("scanner");
  var video = document.getElementById("scan-video");
  var status = document.getElementById("scan-status");
  var script = document.currentScript;
  var decoderUrl = script && script.getAttribute("data-decoder");
  if (!openButton || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  openButton.hidden = false;

  var stream = null;
  var timer = null;
  var canvas = document.createElement("canvas");

  function say(text) { status.textContent = text; }

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    panel.hidden = true;
    openButton.hidden = false;
  }

  // Follow a code only when it is a badge on this very site; show anything else as text.
  function handle(text) {
    var url;
    try { url = new URL(text, "http://invalid.invalid"); } catch (e) { url = null; }
    if (url && url.origin === window.location.origin && /^\/b\/[\w-]+$/.test(url.pathname)) {
      say("Found a badge. Opening it\u2026");
      stop();
      window.location.assign(url.pathname);
      return true;
    }
    say("That code isn't a badge from this event: " + text);
    return false;
  }

  function loadDecoder() {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) return resolve(window.jsQR);
      var tag = document.createElement("script");
      tag.src = decoderUrl;
      tag.onload = function () { resolve(window.jsQR); };
      tag.onerror = reject;
      document.head.appendChild(tag);
    });
  }

  function makeDetector() {
    if ("BarcodeDetector" in window) {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      return Promise.resolve(function () {
        return detector.detect(video).then(function (codes) {
          return codes.length ? codes[0].rawValue : null;
        });
      });
    }
    return loadDecoder().then(function (jsQR) {
      return function () {
        var width = video.videoWidth, height = video.videoHeight;
        if (!width || !height) return Promise.resolve(null);
        canvas.width = width;
        canvas.height = height;
        var context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(video, 0, 0, width, height);
        var code = jsQR(context.getImageData(0, 0, width, height).data, width, height);
        return Promise.resolve(code ? code.data : null);
      };
    });
  }

  function loop(detect) {
    if (!stream) return;
    detect().then(function (text) {
      if (text && handle(text)) return;
      timer = setTimeout(function () { loop(detect); }, 150);
    }, function () {
      timer = setTimeout(function () { loop(detect); }, 300);
    });
  }

  openButton.addEventListener("click", function () {
    openButton.hidden = true;
    panel.hidden = false;
    say("Starting the camera\u2026");
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        return video.play();
      })
      .then(makeDetector)
      .then(function (detect) {
        say("Point the camera at someone's badge.");
        loop(detect);
      })
      .catch(function () {
        say("The camera isn't available. You can scan badges with your phone's camera app instead.");
        if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
        stream = null;
      });
  });
  document.getElementById("scan-close").addEventListener("click", stop);
})();
