// OneEye desk: live cards, missing-person banners, camera status.
// Everything shown is built with textContent (never innerHTML): event fields
// come from other systems and must not be able to inject markup.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var cards = document.getElementById("cards");
  var alerts = document.getElementById("alerts");
  var conn = document.getElementById("conn");
  var seen = {};          // event_id -> true, so catch-up and live pushes never double up
  var lastSeq = 0, lastId = null;
  var MAX_CARDS = 24;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function localTime(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  }
  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); });
  }
  function safeUrl(u) { return typeof u === "string" && /^(https?:|data:image\/)/.test(u) ? u : null; }

  function photo(src, name) {
    var box = el("div", "photo");
    var url = safeUrl(src);
    if (url) {
      var img = el("img"); img.src = url; img.alt = name || ""; img.loading = "lazy";
      img.onerror = function () { box.textContent = initials(name); };
      box.appendChild(img);
    } else {
      box.textContent = initials(name);
    }
    return box;
  }
  function initials(name) {
    return (name || "?").split(/\s+/).map(function (p) { return p.charAt(0); }).join("").slice(0, 2).toUpperCase();
  }

  function customerCard(rec) {
    var ev = rec.event, c = ev.customer || {}, m = ev.match || {};
    var card = el("article", "card" + (ev.degraded || !ev.customer ? " degraded" : ""));
    card.dataset.eventId = rec.event_id;
    card.appendChild(photo(c.photo_url, c.name));
    var body = el("div", "body");
    body.appendChild(el("h3", "name", c.name || ("Customer " + (m.person_id || ""))));
    if (c.segment) body.appendChild(el("span", "segment", c.segment));
    if (c.notes) body.appendChild(el("p", "notes", c.notes));
    if (ev.degraded || !ev.customer) body.appendChild(el("p", "warn", ev.message || "Customer details unavailable"));
    var meta = el("p", "meta");
    meta.appendChild(el("time", null, localTime(ev.observed_at)));
    meta.appendChild(document.createTextNode(" · " + (m.camera_id || ev.device_id || "camera ?")));
    body.appendChild(meta);
    card.appendChild(body);
    return card;
  }

  function addCard(rec) {
    var empty = document.getElementById("no-cards");
    if (empty) empty.remove();
    cards.insertBefore(customerCard(rec), cards.firstChild);
    while (cards.children.length > MAX_CARDS) cards.removeChild(cards.lastChild);
  }

  function banner(rec) {
    if (rec.ack || document.getElementById("alert-" + rec.event_id)) return;
    var ev = rec.event, c = ev.case || {}, m = ev.match || {};
    var b = el("div", "banner");
    b.id = "alert-" + rec.event_id;
    b.setAttribute("role", "alert");
    var snap = safeUrl(ev.snapshot_url) || (m.snapshot_jpeg ? "data:image/jpeg;base64," + m.snapshot_jpeg : null);
    if (snap) b.appendChild(photo(snap, c.name));
    var text = el("div", "text");
    text.appendChild(el("strong", null, "MISSING PERSON SIGHTED: " + (c.name || m.person_id || "unknown")));
    var line = (c.id || m.person_id || "") + " · " + (m.camera_id || ev.device_id || "camera ?") + " · " + localTime(ev.observed_at);
    text.appendChild(el("div", null, line));
    if (c.agency || c.contact) text.appendChild(el("div", null, "Call " + [c.agency, c.contact].filter(Boolean).join(" ")));
    if (ev.message) text.appendChild(el("div", "msg", ev.message));
    b.appendChild(text);
    var btn = el("button", "ack", "Acknowledge");
    btn.onclick = function () {
      btn.disabled = true;
      fetch("/api/events/" + encodeURIComponent(rec.event_id) + "/ack", {
        method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf}
      }).then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(acked).catch(function () { btn.disabled = false; });
    };
    b.appendChild(btn);
    alerts.appendChild(b);
  }

  function acked(ack) {
    var b = document.getElementById("alert-" + ack.event_id);
    if (!b || b.classList.contains("done")) return;
    b.classList.add("done");
    var btn = b.querySelector("button.ack");
    if (btn) btn.remove();
    b.appendChild(el("div", "ackinfo", "Acknowledged by " + ack.by + " at " + localTime(ack.at)));
    setTimeout(function () { b.remove(); }, 60000);
  }

  function handle(rec) {
    if (rec.seq > lastSeq) { lastSeq = rec.seq; lastId = rec.event_id; }
    if (seen[rec.event_id]) return;
    seen[rec.event_id] = true;
    if (rec.kind === "customer_arrived") addCard(rec);
    else if (rec.kind === "missing_person_sighted") banner(rec);
    else refreshDevices();
  }

  function renderDevices(data) {
    var tbody = document.querySelector("#devices tbody");
    tbody.textContent = "";
    if (!data.devices.length) {
      var tr = el("tr"), td = el("td", "empty", "No camera has reported yet.");
      td.colSpan = 4; tr.appendChild(td); tbody.appendChild(tr);
      return;
    }
    data.devices.forEach(function (d) {
      var tr = el("tr", d.online ? "online" : "offline");
      tr.appendChild(el("td", null, d.device_id));
      var st = el("td"); st.appendChild(el("span", "dot")); st.appendChild(document.createTextNode(d.online ? " online" : " offline"));
      if (d.camera_state && d.camera_state !== "ok" && d.online) st.appendChild(el("small", null, " (" + d.camera_state + ")"));
      tr.appendChild(st);
      tr.appendChild(el("td", null, d.fps === null || d.fps === undefined ? "–" : Number(d.fps).toFixed(1)));
      tr.appendChild(el("td", null, d.age_s < 60 ? Math.round(d.age_s) + " s ago" : localTime(d.last_seen)));
      tbody.appendChild(tr);
    });
  }
  function refreshDevices() { getJSON("/api/devices").then(renderDevices).catch(function () {}); }

  function catchUp() {
    var url = lastId ? "/api/events?after=" + encodeURIComponent(lastId) : null;
    if (!url) return Promise.resolve();
    return getJSON(url).then(function (d) { d.events.forEach(handle); });
  }

  function start() {
    // newest first from the API; replay oldest first so the newest card ends on top
    return Promise.all([
      getJSON("/api/events?kind=customer_arrived&limit=" + MAX_CARDS),
      getJSON("/api/events?kind=missing_person_sighted&unacked=1&limit=50"),
      getJSON("/api/events?limit=1")
    ]).then(function (res) {
      res[0].events.reverse().forEach(handle);
      res[1].events.reverse().forEach(handle);
      res[2].events.forEach(function (r) { if (r.seq > lastSeq) { lastSeq = r.seq; lastId = r.event_id; } });
    });
  }

  var socket = io({transports: ["websocket", "polling"]});
  var ready = start();
  // body[data-socket] is the page's socket state for people and for browser tests to see
  socket.on("connect", function () {
    conn.hidden = true;
    document.body.dataset.socket = "connected";
    document.body.classList.remove("disconnected");
    ready.then(catchUp).then(refreshDevices);
  });
  function loggedOut() { socket.disconnect(); window.location.href = "/login"; }
  socket.on("logged_out", loggedOut);  // this login ended (here or in another tab)
  socket.on("disconnect", function (reason) {
    // only a logout makes the server close a socket; anything else reconnects by itself
    if (reason === "io server disconnect") { return loggedOut(); }
    conn.hidden = false; document.body.classList.add("disconnected");
    document.body.dataset.socket = "disconnected";
  });
  socket.on("connect_error", function () { conn.hidden = false; });
  socket.on("desk_event", handle);
  socket.on("ack", acked);
  setInterval(refreshDevices, 10000);
  window.oneeyeDesk = {socket: socket, lastSeq: function () { return lastSeq; }};
})();
