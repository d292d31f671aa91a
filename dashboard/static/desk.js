// OneEye desk: grouped alert banners, customer visits, camera panel, attention.
// Grouping is the server's (dashboard/alerts.py): the page asks /api/alerts and
// /api/arrivals whenever something changes, so desk, API and tests share one policy.
// Everything shown is built with textContent (never innerHTML): event fields come
// from other systems and must not be able to inject markup.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var root = document.querySelector(".desk");
  var cards = document.getElementById("cards");
  var alertsBox = document.getElementById("alerts");
  var conn = document.getElementById("conn");
  var PAGE = Number(root.dataset.pageSize) || 200;
  var MAX_CARDS = 24;
  var lastSeq = 0, lastId = null;
  var known = {};          // event_id -> true: an alert we already rang for
  var recentAcks = {};     // "kind|subject" -> {by, at, until}: shown greyed for a minute
  var groups = [];
  var OT = window.oneeyeTime;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); });
  }
  function postJSON(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
      body: JSON.stringify(body || {})})
      .then(function (r) { if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); });
  }
  function safeUrl(u) { return typeof u === "string" && /^(https?:|data:image\/|\/)/.test(u) ? u : null; }
  function initials(name) {
    return (name || "?").split(/\s+/).map(function (p) { return p.charAt(0); }).join("").slice(0, 2).toUpperCase();
  }
  function photo(src, name, label) {
    var fig = el("figure", "photo");
    var url = safeUrl(src);
    var box = el("div", "frame");
    if (url) {
      var img = el("img"); img.src = url; img.alt = (label || "") + " " + (name || ""); img.loading = "lazy";
      img.onerror = function () { box.textContent = initials(name); };
      box.appendChild(img);
    } else {
      box.textContent = initials(name);
    }
    fig.appendChild(box);
    if (label) fig.appendChild(el("figcaption", null, label));
    return fig;
  }
  function strengthTag(rec) {
    var m = (rec.event || {}).match;
    if (!m || !rec.strength) return null;
    var s = el("span", "strength " + rec.strength, rec.strength_text);
    s.title = "distance " + Number(m.distance).toFixed(2) + " (lower is closer), margin " + Number(m.margin).toFixed(2);
    s.tabIndex = 0;
    return s;
  }
  function cameraList(cams) {
    if (cams.length <= 1) return cams.join("");
    return cams.slice(0, -1).join(", ") + " and " + cams[cams.length - 1];
  }

  // --- verdicts -------------------------------------------------------------------------
  function verdictBox(rec) {
    var box = el("div", "verdict");
    if (!rec || !(rec.event || {}).match) return box;
    if (rec.feedback) {
      box.appendChild(el("span", "given " + rec.feedback.verdict,
        (rec.feedback.verdict === "confirmed" ? "Confirmed" : "Not this person") + " · " +
        rec.feedback.by + " " + OT.clock(rec.feedback.at)));
    }
    [["confirmed", "Confirm"], ["rejected", "Not this person"]].forEach(function (v) {
      var b = el("button", "fb " + v[0], v[1]);
      b.type = "button";
      b.onclick = function () {
        b.disabled = true;
        postJSON("/api/events/" + encodeURIComponent(rec.event_id) + "/feedback", {verdict: v[0]})
          .then(refreshAll).catch(function () { b.disabled = false; });
      };
      box.appendChild(b);
    });
    return box;
  }

  // --- banners ----------------------------------------------------------------------------
  function keyOf(g) { return g.kind + "|" + g.subject; }
  function banner(g) {
    var rec = g.latest, ev = rec.event, m = ev.match || {}, c = ev.case || {};
    var sighting = g.kind === "missing_person_sighted";
    var b = el("article", "banner " + (sighting ? "missing" : "outage") + (g.reraised ? " reraised" : ""));
    // id: the newest sighting's event (what a link or a check for one event finds);
    // data-subject: the case or device the banner groups
    b.id = "alert-" + rec.event_id;
    b.dataset.subject = g.subject; b.dataset.kind = g.kind; b.dataset.count = g.count;
    b.dataset.eventIds = g.event_ids.join(" ");
    b.setAttribute("role", "alert");
    var text = el("div", "text");
    if (sighting) {
      var ev_ = el("div", "evidence");
      ev_.appendChild(photo(c.photo_url, c.name, "reference"));
      ev_.appendChild(photo(ev.snapshot_url, c.name, "camera"));
      b.appendChild(ev_);
      text.appendChild(el("strong", "title", "MISSING PERSON: " + (c.name || g.subject)));
      var st = strengthTag(rec); if (st) text.appendChild(st);
    } else {
      text.appendChild(el("strong", "title", "CAMERA OFFLINE: " + g.subject));
    }
    var seen = sighting ? "seen " + g.count + "× on " + cameraList(g.cameras) + ", last " + OT.clock(g.last_at)
      : "offline since " + OT.clock(g.first_at);
    text.appendChild(el("div", "seen", seen));
    if (sighting) {
      text.appendChild(el("div", "case", [g.subject, c.age ? "age " + c.age : null, c.description]
        .filter(Boolean).join(" · ")));
      var call = el("div", "call", "Call " + (c.agency || "the agency") + " ");
      if (c.contact) {
        var tel = el("a", null, c.contact);
        tel.href = "tel:" + String(c.contact).replace(/[^+0-9]/g, "");
        call.appendChild(tel);
      }
      text.appendChild(call);
      // who was told comes from amber_alert's record (case.told_text), never assumed
      text.appendChild(el("div", "sent", g.told_text || (g.notified ? "Agency alerted by email/SMS" : "Agency already alerted (repeat within cooldown)")));
      if (c.safety) text.appendChild(el("div", "safety", c.safety));
      var link = el("a", "more", "all sightings");
      link.href = "/people/" + encodeURIComponent(g.subject);
      text.appendChild(link);
    } else if (ev.message) {
      text.appendChild(el("div", "msg", ev.message));
    }
    if (g.reraised) {
      text.appendChild(el("div", "again", "Seen again after " + g.reraised.by + " acknowledged at " + OT.clock(g.reraised.at)));
    }
    b.appendChild(text);
    var actions = el("div", "actions");
    if (sighting) actions.appendChild(verdictBox(rec));
    var btn = el("button", "ack", "Acknowledge");
    btn.type = "button";
    btn.onclick = function () {
      btn.disabled = true;
      postJSON("/api/alerts/ack", {kind: g.kind, subject: g.subject, upto_seq: g.upto_seq})
        .then(function (a) { acked(g, a); }).catch(function () { btn.disabled = false; refreshAlerts(); });
    };
    actions.appendChild(btn);
    b.appendChild(actions);
    return b;
  }
  function acked(g, a) {
    recentAcks[keyOf(g)] = {group: g, by: a.by, at: a.at, until: Date.now() + 60000};
    refreshAlerts();
  }
  function doneBanner(r) {
    var b = el("article", "banner done");
    b.id = "alert-" + r.group.latest.event_id;
    b.dataset.subject = r.group.subject;
    b.appendChild(el("div", "text", (r.group.kind === "missing_person_sighted" ? "Missing person " : "Camera ") +
      r.group.subject + ": acknowledged by " + r.by + " at " + OT.clock(r.at)));
    return b;
  }
  function renderAlerts(data) {
    groups = data.alerts;
    var now = Date.now(), open = {};
    alertsBox.textContent = "";
    groups.forEach(function (g) {
      open[keyOf(g)] = true;
      alertsBox.appendChild(banner(g));
      g.event_ids.forEach(function (id) {
        if (!known[id]) { known[id] = true; attention(g); }
      });
    });
    Object.keys(recentAcks).forEach(function (k) {
      var r = recentAcks[k];
      if (r.until < now) { delete recentAcks[k]; return; }
      if (!open[k]) alertsBox.appendChild(doneBanner(r));
    });
    document.body.dataset.openAlerts = groups.length;
    updateTitle();
  }
  function refreshAlerts() { return getJSON("/api/alerts").then(renderAlerts); }

  // --- customer visits ----------------------------------------------------------------------
  function visitCard(v) {
    var rec = v.latest, ev = rec.event, c = ev.customer || {};
    var card = el("article", "card" + (ev.degraded || !ev.customer ? " degraded" : ""));
    card.dataset.eventId = rec.event_id;
    card.dataset.eventIds = v.event_ids.join(" ");
    card.dataset.person = v.person_id;
    card.appendChild(photo(c.photo_url, c.name, null));
    var body = el("div", "body");
    body.appendChild(el("h3", "name", c.name || ("Customer " + v.person_id)));
    if (c.segment) body.appendChild(el("span", "segment", c.segment));
    var st = strengthTag(rec); if (st) body.appendChild(st);
    if (c.notes) body.appendChild(el("p", "notes", c.notes));
    if (ev.degraded || !ev.customer) body.appendChild(el("p", "warn", ev.message || "Customer details unavailable"));
    var meta = el("p", "meta");
    meta.appendChild(el("time", null, OT.clock(v.last_at)));
    meta.appendChild(document.createTextNode(" · " + cameraList(v.cameras) +
      (v.count > 1 ? " · seen " + v.count + "× since " + OT.clock(v.first_at) : "")));
    body.appendChild(meta);
    body.appendChild(verdictBox(rec));
    card.appendChild(body);
    return card;
  }
  function renderVisits(data) {
    cards.textContent = "";
    if (!data.visits.length) cards.appendChild(el("p", "empty", "No customers recognised yet."));
    data.visits.slice(0, MAX_CARDS).forEach(function (v) { cards.appendChild(visitCard(v)); });
  }
  function refreshVisits() { return getJSON("/api/arrivals?limit=" + MAX_CARDS).then(renderVisits); }

  // --- cameras ---------------------------------------------------------------------------------
  function renderDevices(data) {
    var tbody = document.querySelector("#devices tbody");
    tbody.textContent = "";
    if (!data.devices.length) {
      var tr = el("tr"), td = el("td", "empty", "No camera has reported yet.");
      td.colSpan = 4; tr.appendChild(td); tbody.appendChild(tr);
      return;
    }
    data.devices.forEach(function (d) {
      // One row per camera of the device (health "cameras"); one row for an older device.
      var cams = d.cameras && d.cameras.length ? d.cameras : [null];
      cams.forEach(function (c) {
        var tr = el("tr", d.online ? "online" : "offline");
        if (c) tr.setAttribute("data-camera", c.camera_id);
        tr.appendChild(el("td", "dev", c ? d.device_id + " · " + c.camera_id : d.device_id));
        var state = c ? c.state : d.camera_state, fps = c ? c.fps : d.fps;
        var st = el("td"); st.appendChild(el("span", "dot")); st.appendChild(document.createTextNode(d.online ? " online" : " OFFLINE"));
        if (state && state !== "ok" && d.online) st.appendChild(el("small", null, " (" + state + ")"));
        // Device-wide warnings from its health (clock off, storage full, shared client id).
        (d.notes || []).forEach(function (n) { st.appendChild(el("small", "note", " · " + n)); });
        tr.appendChild(st);
        tr.appendChild(el("td", "fps", fps === null || fps === undefined ? "—" : Number(fps).toFixed(1)));
        tr.appendChild(el("td", null, d.age_s < 60 ? Math.round(d.age_s) + " s ago" : OT.clock(d.last_seen)));
        tbody.appendChild(tr);
      });
    });
  }
  function refreshDevices() { return getJSON("/api/devices").then(renderDevices).catch(function () {}); }

  // --- attention: sound, notification, title ------------------------------------------------
  var soundOn = localStorage.getItem("oneeye.sound") !== "off";
  var soundBtn = document.getElementById("sound");
  var notifyBtn = document.getElementById("notify");
  function showSound() {
    soundBtn.textContent = soundOn ? "Sound on" : "Sound off";
    soundBtn.setAttribute("aria-pressed", String(soundOn));
  }
  soundBtn.onclick = function () {
    soundOn = !soundOn;
    localStorage.setItem("oneeye.sound", soundOn ? "on" : "off");
    showSound();
  };
  showSound();
  if (!("Notification" in window) || Notification.permission !== "default"
      || localStorage.getItem("oneeye.notify.asked")) {
    notifyBtn.hidden = true;
  }
  notifyBtn.onclick = function () {
    localStorage.setItem("oneeye.notify.asked", "1");  // asked once, whatever the answer
    notifyBtn.hidden = true;
    Notification.requestPermission();
  };
  var audio = null;
  function beep() {
    if (!soundOn) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), gain = audio.createGain();
      o.frequency.value = 880; gain.gain.value = 0.15;
      o.connect(gain); gain.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.35);
    } catch (e) { /* no audio device: the banner and title still show it */ }
  }
  var ready = false;  // no ringing for what was already open when the page loaded
  function attention(g) {
    if (!ready) return;
    beep();
    document.body.dataset.rang = Number(document.body.dataset.rang || 0) + 1;
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      var c = (g.latest.event.case || {});
      new Notification(g.kind === "missing_person_sighted" ? "Missing person: " + (c.name || g.subject)
        : "Camera offline: " + g.subject, {tag: keyOf(g), body: "seen " + g.count + "×"});
    }
  }
  function updateTitle() {
    document.title = (groups.length ? "(" + groups.length + ") " : "") + "OneEye desk";
  }

  // --- catch-up and live --------------------------------------------------------------------
  function track(rec) {
    if (rec.seq > lastSeq) { lastSeq = rec.seq; lastId = rec.event_id; }
    root.dataset.lastSeq = lastSeq;
  }
  function pageAfter() {
    // everything since the last event this page saw, a page at a time until a short page
    if (!lastId) return Promise.resolve();
    return getJSON("/api/events?limit=" + PAGE + "&after=" + encodeURIComponent(lastId)).then(function (d) {
      d.events.forEach(track);
      root.dataset.pages = Number(root.dataset.pages || 0) + 1;
      if (d.events.length >= d.limit) return pageAfter();
    });
  }
  var pending = null;
  function refreshAll() {
    // several pushes in a burst become one refresh
    if (pending) return pending;
    pending = new Promise(function (r) { setTimeout(r, 100); })
      .then(function () { pending = null; return Promise.all([refreshAlerts(), refreshVisits(), refreshDevices()]); });
    return pending;
  }
  function catchUp() {
    document.body.dataset.caughtUp = "0";
    // open alerts first: they matter most and do not depend on the pages below
    return refreshAlerts().then(pageAfter).then(function () {
      return Promise.all([refreshVisits(), refreshDevices()]);
    }).then(function () { ready = true; document.body.dataset.caughtUp = "1"; });
  }
  function start() {
    return getJSON("/api/events?limit=1").then(function (d) { d.events.forEach(track); });
  }

  var socket = io({transports: ["websocket", "polling"]});
  var started = start();
  socket.on("connect", function () {
    conn.hidden = true;
    document.body.classList.remove("disconnected");
    document.body.dataset.socket = "connected";
    started.then(catchUp);
  });
  function loggedOut() { socket.disconnect(); window.location.href = "/login"; }
  socket.on("logged_out", loggedOut);  // this login ended (here or in another tab)
  socket.on("disconnect", function (reason) {
    document.body.dataset.socket = "disconnected";
    // only a logout makes the server close a socket; anything else reconnects by itself
    if (reason === "io server disconnect") { return loggedOut(); }
    conn.hidden = false; document.body.classList.add("disconnected");
  });
  socket.on("connect_error", function () { conn.hidden = false; });
  socket.on("desk_event", function (rec) { track(rec); refreshAll(); });
  ["ack", "alert_ack", "feedback", "device"].forEach(function (name) { socket.on(name, refreshAll); });
  setInterval(refreshDevices, 10000);
  setInterval(function () { if (Object.keys(recentAcks).length) refreshAlerts(); }, 15000);
  window.oneeyeDesk = {socket: socket, lastSeq: function () { return lastSeq; }};
})();
