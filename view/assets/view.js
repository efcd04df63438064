// Live tiles: poll /api/devices, swap in each device's newest frame when it
// changes, update the figures and the stale mark. A new device reloads the
// page (the server renders its tile). Plain JavaScript, no dependencies.
"use strict";
(function () {
  var every = parseInt(document.body.dataset.refresh, 10) || 2000;
  var status = document.getElementById("status");
  function ago(s) {
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 172800) return (s / 3600).toFixed(1) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }
  function bytes(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(1) + " GiB";
    if (n >= 1048576) return (n / 1048576).toFixed(1) + " MiB";
    if (n >= 1024) return (n / 1024).toFixed(1) + " KiB";
    return n + " B";
  }
  function set(tile, field, text) {
    var el = tile.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = text;
  }
  function update(st) {
    var tiles = {};
    document.querySelectorAll(".tile").forEach(function (t) { tiles[t.dataset.device] = t; });
    var unknown = false;
    st.devices.forEach(function (d) {
      var t = tiles[d.name];
      if (!t) { unknown = true; return; }
      t.classList.toggle("stale", d.stale);
      t.querySelector(".badge").textContent = d.stale ? "STALE" : "LIVE";
      set(t, "age", ago(d.age_seconds));
      set(t, "rate", d.frames_per_minute + " frames/min · " + bytes(d.bytes_per_minute) + "/min");
      set(t, "latency", d.latency_seconds == null ? "–" : Math.round(d.latency_seconds * 1000) + " ms");
      set(t, "frames", d.frames);
      set(t, "lost", d.ids.lost);
      set(t, "duplicates", d.ids.duplicates);
      var n = d.latest ? String(d.latest.n) : "";
      var img = t.querySelector("img");
      if (n && n !== t.dataset.n && d.latest.content_type) {
        // Load off-screen, swap when complete: no flicker, no broken tile.
        var next = new Image();
        next.onload = function () {
          if (img) { img.src = next.src; } else { location.reload(); }
        };
        next.src = d.latest_url + "?n=" + n;
        t.dataset.n = n;
      }
      t.dataset.live = "updated";
      t.dataset.frames = d.frames;
    });
    if (unknown) location.reload();
    if (status) status.textContent = "· updated " + new Date().toLocaleTimeString();
    document.body.dataset.live = "ok";
  }
  function poll() {
    fetch("/api/devices", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(update)
      .catch(function (e) { if (status) status.textContent = "· cannot refresh: " + e.message; document.body.dataset.live = "error"; })
      .finally(function () { setTimeout(poll, every); });
  }
  document.querySelectorAll(".tile img").forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) img.dataset.loaded = img.naturalWidth + "x" + img.naturalHeight;
    img.addEventListener("load", function () { img.dataset.loaded = img.naturalWidth + "x" + img.naturalHeight; });
  });
  poll();
})();
