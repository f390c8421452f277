// The in-page scanner shared by the badge page and the door desk: only where a camera can be
// asked for. It reads codes with the browser's BarcodeDetector or, without one, the vendored
// jsQR (fetched on first use, from the script tag's data-decoder); `found(text, scanner)`
// gets each code read and returns true once it is done with the camera.
function rapportScanner(found) {
  "use strict";
  var openButton = document.getElementById("scan-open");
  var closeButton = document.getElementById("scan-close");
  var panel = document.getElementById("scanner");
  var video = document.getElementById("scan-video");
  var status = document.getElementById("scan-status");
  var script = document.currentScript;
  var decoderUrl = script && script.getAttribute("data-decoder");
  if (!openButton || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return null;
  openButton.hidden = false;

  var stream = null;
  var timer = null;
  var canvas = document.createElement("canvas");
  var scanner = {};

  scanner.say = function (text) { status.textContent = text; };

  scanner.stop = function () {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    panel.hidden = true;
    openButton.hidden = false;
  };

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
      if (text && found(text, scanner)) return;
      timer = setTimeout(function () { loop(detect); }, 150);
    }, function () {
      timer = setTimeout(function () { loop(detect); }, 300);
    });
  }

  var opened = 0;  // each opening's number: a camera given to an earlier one is stopped

  scanner.start = function (prompt) {
    if (stream || !panel.hidden) return;  // already open, or opening
    var mine = ++opened;
    openButton.hidden = true;
    panel.hidden = false;
    video.hidden = false;
    closeButton.textContent = "Close the camera";
    scanner.say("Starting the camera\u2026");
    panel.scrollIntoView({ block: "start" });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        if (mine !== opened || panel.hidden) {  // closed while the camera was being asked for
          media.getTracks().forEach(function (track) { track.stop(); });
          throw new Error("closed");
        }
        stream = media;
        video.srcObject = media;
        return video.play();
      })
      .then(makeDetector)
      .then(function (detect) {
        if (mine !== opened || !stream) return;  // closed (and perhaps opened again) meanwhile
        scanner.say(prompt);
        loop(detect);
      })
      .catch(function (error) {
        if (mine !== opened) return;  // closed and opened again meanwhile: not ours to say
        if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
        stream = null;
        if (panel.hidden) return;  // closed meanwhile: nothing to say
        // Said where the button was, with no empty camera view above it.
        video.hidden = true;
        closeButton.textContent = "Close";
        scanner.say(error && error.name === "NotAllowedError"
          ? "Camera access is blocked for this page. Allow it in your browser's site settings, or scan badges with your phone's camera app."
          : "The camera isn't available. You can scan badges with your phone's camera app instead.");
      });
  };

  openButton.addEventListener("click", function () {
    scanner.start(openButton.getAttribute("data-prompt") || "Point the camera at someone's badge.");
  });
  closeButton.addEventListener("click", scanner.stop);
  return scanner;
}
