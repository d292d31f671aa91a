// OneEye desk: grouped alert banners, customer visits, camera panel, attention.
// Grouping is the server's (dashboard/alerts.py); the page applies pushed arrivals to its
// visit cards in place and pulls only banners (on an alert push) and everything after a
// reconnect, so desk, API and tests share one policy.
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
          .then(function () { later(refreshAlerts); }).catch(function () { b.disabled = false; });
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
    var b = el("article", "banner " + (sighting ? "missing" : "outage") + (g.reraised && !g.closed ? " reraised" : "") +
      (g.closed ? " closed" : ""));
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
    // the case's total at this desk's sites: a re-raised banner does not restart at 1×
    var total = Math.max(g.total || 0, g.count);
    var seen = sighting ? "seen " + total + "×" + (total > g.count ? " in all (" + g.count + " new)" : "") +
      " on " + cameraList(g.cameras) + ", last " + OT.clock(g.last_at)
      : "offline since " + OT.clock(g.first_at);
    text.appendChild(el("div", "seen", seen));
    if (sighting && g.closed) {
      // one case, one story: the officer closed it; nobody at any desk needs to act
      text.appendChild(el("div", "closed-note", "case closed by " + g.closed.by + " at " +
        OT.clock(g.closed.at) + " — no action needed"));
    } else if (sighting) {
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
      if (g.safety || c.safety) text.appendChild(el("div", "safety", g.safety || c.safety));
      var link = el("a", "more", "all sightings");
      link.href = "/people/" + encodeURIComponent(g.subject);
      text.appendChild(link);
    } else if (ev.message) {
      text.appendChild(el("div", "msg", ev.message));
    }
    if (g.reraised && !g.closed) {  // a closed case asks nobody to look again
      text.appendChild(el("div", "again", "Seen again after " + g.reraised.by + " acknowledged at " + OT.clock(g.reraised.at)));
    }
    b.appendChild(text);
    var actions = el("div", "actions");
    if (sighting && !g.closed) actions.appendChild(verdictBox(rec));  // nothing left to judge
    var btn = el("button", "ack", g.closed ? "Dismiss" : "Acknowledge");
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
        if (!known[id]) { known[id] = true; if (!g.closed) attention(g); }
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
  // One card per visit (dashboard/alerts.py group_visits), built once and then updated in
  // place: a pushed arrival joins its visit's card (count, cameras, last seen) or makes a new
  // card at the top; nothing else is rebuilt, so no animation replays and the button under
  // the pointer stays the same element. Order: newest *first arrival* first (a later
  // sighting never moves a card). A card leaves when served or card_ttl_s after its last
  // sighting (then it is in History only).
  var CARD_TTL_S = Number(root.dataset.cardTtl) || 1800;
  var WINDOW_S = Number(root.dataset.visitWindow) || 900;
  var visits = {};           // visit_id -> {v: visit, card: element or null, ui: parts}
  function personOf(rec) { return String(((rec.event || {}).match || {}).person_id || rec.event_id); }
  function ms(iso) { return Date.parse(iso); }
  function ago(iso) {
    var s = Math.max(0, (Date.now() - ms(iso)) / 1000);
    if (s < 45) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    var h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60);
    return h + " h" + (m ? " " + m + " min" : "") + " ago";
  }
  function when(iso) {
    // relative text, the absolute local time on hover (the same format as History)
    var t = el("time", "ago", ago(iso));
    t.dateTime = iso; t.title = OT.full(iso) + " " + OT.zone;
    t.dataset.at = iso;
    return t;
  }
  function setWhen(t, iso) {
    if (t.dataset.at === iso) return;
    t.dataset.at = iso; t.dateTime = iso; t.title = OT.full(iso) + " " + OT.zone; t.textContent = ago(iso);
  }
  function linked(fig, src) {
    // every evidence image opens full size (a plain link: no inline script under the CSP)
    var url = safeUrl(src), img = fig.querySelector("img");
    if (!url || !img) return fig;
    var a = el("a", "full"); a.href = url; a.target = "_blank"; a.rel = "noopener";
    a.title = "Open the full image";
    img.parentNode.replaceChild(a, img); a.appendChild(img);
    return fig;
  }
  function makeCard(v) {
    var card = el("article", "card"), ui = {};
    ui.photos = el("div", "evidence");
    card.appendChild(ui.photos);
    var body = el("div", "body");
    ui.name = body.appendChild(el("h3", "name"));
    ui.segment = body.appendChild(el("span", "segment"));
    ui.strength = body.appendChild(el("span", "strength"));
    ui.strength.tabIndex = 0;
    ui.notes = body.appendChild(el("p", "notes"));
    ui.warn = body.appendChild(el("p", "warn"));
    var meta = body.appendChild(el("p", "meta"));
    ui.last = meta.appendChild(when(v.last_at));
    ui.where = meta.appendChild(el("span", "where"));
    var box = body.appendChild(el("div", "verdict"));
    ui.given = box.appendChild(el("span", "given"));
    ui.buttons = {};
    [["confirmed", "Confirm"], ["rejected", "Not this person"]].forEach(function (d) {
      var b = box.appendChild(el("button", "fb " + d[0], d[1]));
      b.type = "button";
      b.onclick = function () { decide(v.visit_id, d[0], b); };
      ui.buttons[d[0]] = b;
    });
    ui.undo = box.appendChild(el("button", "fb undo", "Undo"));
    ui.undo.type = "button";
    ui.undo.onclick = function () { decide(v.visit_id, null, ui.undo); };
    ui.served = box.appendChild(el("button", "fb served", "Served"));
    ui.served.type = "button";
    ui.served.title = "Move this card to History";
    ui.served.onclick = function () {
      ui.served.disabled = true;
      postJSON("/api/visits/" + encodeURIComponent(visits[v.visit_id].v.visit_id) + "/served", {})
        .then(applyMark).catch(function () { ui.served.disabled = false; });
    };
    card.appendChild(body);
    return {card: card, ui: ui};
  }
  function decide(visitId, verdict, button) {
    button.disabled = true;
    postJSON("/api/visits/" + encodeURIComponent(visitId) + "/verdict", {verdict: verdict})
      .then(applyMark).catch(function () { button.disabled = false; });
  }
  function show(node, on) { node.hidden = !on; }
  function fillCard(entry) {
    var v = entry.v, ui = entry.ui, card = entry.card, rec = v.latest, ev = rec.event, c = ev.customer || {};
    var rejected = v.verdict && v.verdict.verdict === "rejected";
    card.className = "card" + (ev.degraded || !ev.customer ? " degraded" : "") +
      (rejected ? " rejected" : "") + (v.verdict && !rejected ? " confirmed" : "") + (entry.fresh ? " new" : "");
    card.dataset.visitId = v.visit_id;
    card.dataset.eventId = rec.event_id;
    card.dataset.eventIds = v.event_ids.join(" ");
    card.dataset.person = v.person_id;
    card.dataset.firstAt = v.first_at;
    card.dataset.lastAt = v.last_at;
    card.dataset.count = v.count;
    // photos: the profile photo, and the camera's crop when the site sends one
    var key = (c.photo_url || "") + "|" + (ev.snapshot_url || "");
    if (ui.photoKey !== key) {
      ui.photoKey = key;
      ui.photos.textContent = "";
      ui.photos.appendChild(linked(photo(c.photo_url, c.name, ev.snapshot_url ? "profile" : null), c.photo_url));
      if (ev.snapshot_url) ui.photos.appendChild(linked(photo(ev.snapshot_url, c.name, "camera"), ev.snapshot_url));
    }
    ui.name.textContent = c.name || ("Customer " + v.person_id);
    ui.segment.textContent = c.segment || ""; show(ui.segment, !!c.segment);
    var m = ev.match || {};
    ui.strength.className = "strength " + (rec.strength || "");
    ui.strength.textContent = rec.strength_text || "";
    ui.strength.title = rec.strength ? "distance " + Number(m.distance).toFixed(2) + " (lower is closer), margin " + Number(m.margin).toFixed(2) : "";
    show(ui.strength, !!rec.strength);
    ui.notes.textContent = c.notes || ""; show(ui.notes, !!c.notes);
    var warn = ev.degraded || !ev.customer;
    ui.warn.textContent = warn ? (ev.message || "Customer details unavailable") : ""; show(ui.warn, warn);
    setWhen(ui.last, v.last_at);
    ui.where.textContent = " · " + cameraList(v.cameras) + (v.count > 1 ? " · seen " + v.count + "× since " + OT.clock(v.first_at) : "");
    var given = v.verdict;
    ui.given.className = "given" + (given ? " " + given.verdict : "");
    ui.given.textContent = given ? (given.verdict === "confirmed" ? "Confirmed" : "Not this person") +
      " · " + given.by + " " + OT.clock(given.at) : "";
    ui.given.title = given ? OT.full(given.at) + " " + OT.zone : "";
    show(ui.given, !!given);
    Object.keys(ui.buttons).forEach(function (k) { ui.buttons[k].disabled = false; show(ui.buttons[k], !given); });
    ui.undo.disabled = false; show(ui.undo, !!given);
    ui.served.disabled = false;
  }
  function placeCard(entry) {
    // stable order: by first arrival, newest first; a new card goes above older visits
    var after = null, list = cards.querySelectorAll(".card");
    for (var i = 0; i < list.length; i++) {
      if (list[i].dataset.firstAt < entry.v.first_at) { after = list[i]; break; }
    }
    cards.insertBefore(entry.card, after);
    var empty = document.getElementById("no-cards"); if (empty) empty.hidden = true;
    var all = cards.querySelectorAll(".card");
    for (var j = MAX_CARDS; j < all.length; j++) dropCard(visits[all[j].dataset.visitId]);
  }
  function dropCard(entry) {
    if (!entry || !entry.card) return;
    entry.card.remove(); entry.card = null;
    if (!cards.querySelector(".card")) {
      var empty = document.getElementById("no-cards"); if (empty) empty.hidden = false;
    }
  }
  function onDesk(v) { return !v.served && Date.now() - ms(v.last_at) < CARD_TTL_S * 1000; }
  function showVisit(v, fresh) {
    var entry = visits[v.visit_id];
    if (!entry) entry = visits[v.visit_id] = {v: v};
    entry.v = v;
    if (!onDesk(v)) { dropCard(entry); return; }
    if (!entry.card) {
      var made = makeCard(v);
      entry.card = made.card; entry.ui = made.ui;
      // a new card animates once; a rejected visit's repeat is quiet
      entry.fresh = fresh && !(v.verdict && v.verdict.verdict === "rejected");
      fillCard(entry);
      placeCard(entry);
      entry.fresh = false;
      return;
    }
    fillCard(entry);
  }
  function applyArrival(rec) {
    var person = personOf(rec), at = ms(rec.observed_at), mark = rec.visit || null;
    var entry = mark && visits[mark.visit_id] ? visits[mark.visit_id] : null;
    if (!entry) {
      Object.keys(visits).some(function (id) {
        var v = visits[id].v;
        if (v.person_id === person && v.site_id === rec.site_id &&
            at - ms(v.last_at) < WINDOW_S * 1000 && ms(v.first_at) - at < WINDOW_S * 1000) {
          entry = visits[id]; return true;
        }
        return false;
      });
    }
    if (entry) {
      var v = entry.v;
      if (v.event_ids.indexOf(rec.event_id) !== -1) return;
      v.count += 1; v.event_ids.push(rec.event_id);
      var cam = ((rec.event.match || {}).camera_id) || rec.event.device_id || "?";
      if (v.cameras.indexOf(cam) === -1) v.cameras.push(cam);
      if (rec.observed_at >= v.last_at) { v.last_at = rec.observed_at; v.latest = rec; }
      if (rec.observed_at < v.first_at) v.first_at = rec.observed_at;
      if (mark) { v.verdict = mark.verdict; v.served = mark.served; }
      showVisit(v, false);
      return;
    }
    showVisit({visit_id: mark ? mark.visit_id : rec.event_id, kind: rec.kind, person_id: person,
      site_id: rec.site_id, count: 1,
      cameras: [((rec.event.match || {}).camera_id) || rec.event.device_id || "?"],
      first_at: rec.observed_at, last_at: rec.observed_at, event_ids: [rec.event_id], latest: rec,
      verdict: mark ? mark.verdict : null, served: mark ? mark.served : null}, ready);
  }
  function applyMark(mark) {
    // a verdict or "served" given here or at another desk of the site
    var entry = visits[mark.visit_id];
    if (!entry) return;
    entry.v.verdict = mark.verdict; entry.v.served = mark.served;
    showVisit(entry.v, false);
  }
  function renderVisits(data) {
    CARD_TTL_S = data.card_ttl_s || CARD_TTL_S; WINDOW_S = data.window_s || WINDOW_S;
    var listed = {};
    data.visits.slice(0, MAX_CARDS).forEach(function (v) {
      listed[v.visit_id] = true;
      showVisit(v, ready && !visits[v.visit_id]);
    });
    Object.keys(visits).forEach(function (id) { if (!listed[id]) dropCard(visits[id]); });
  }
  function refreshVisits() { return getJSON("/api/arrivals?limit=" + MAX_CARDS).then(renderVisits); }
  function tick() {
    // relative times move on; cards past card_ttl_s leave (History keeps them)
    Object.keys(visits).forEach(function (id) {
      var entry = visits[id];
      if (entry.card && !onDesk(entry.v)) dropCard(entry);
    });
    document.querySelectorAll("time.ago").forEach(function (t) { t.textContent = ago(t.dataset.at); });
  }

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
    if ((g.latest.feedback || {}).verdict === "rejected") return;  // a known false match stays quiet
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
  var pending = {};
  function later(pull) {
    // several pushes in a burst become one pull of that part
    var key = pull === refreshAlerts ? "alerts" : "devices";
    if (pending[key]) return pending[key];
    pending[key] = new Promise(function (r) { setTimeout(r, 100); })
      .then(function () { pending[key] = null; return pull(); });
    return pending[key];
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
  // A pushed record is applied, not re-fetched: an arrival joins its card in place. Banners
  // are grouped with acknowledgements on the server (dashboard/alerts.py), so an alert push
  // pulls /api/alerts alone; a "device" push names only the device, so it pulls the
  // camera panel alone. Everything is pulled again only after a reconnect (catchUp).
  socket.on("desk_event", function (rec) {
    track(rec);
    if (rec.kind === "customer_arrived") applyArrival(rec);
    else if (rec.kind === "missing_person_sighted" || rec.kind === "device_offline" || rec.kind === "device_online") later(refreshAlerts);
  });
  socket.on("visit", function (mark) {
    if (mark.kind === "customer_arrived") applyMark(mark); else later(refreshAlerts);
  });
  // a colleague's acknowledgement: this desk too says who and when (not only theirs)
  socket.on("alert_ack", function (a) {
    var g = groups.filter(function (x) { return x.kind === a.kind && x.subject === a.subject; })[0];
    if (g && !recentAcks[keyOf(g)]) recentAcks[keyOf(g)] = {group: g, by: a.by, at: a.at, until: Date.now() + 60000};
    later(refreshAlerts);
  });
  ["ack", "feedback", "case_closed"].forEach(function (name) { socket.on(name, function () { later(refreshAlerts); }); });
  socket.on("device", function () { later(refreshDevices); });
  setInterval(refreshDevices, 10000);
  setInterval(tick, Math.max(1000, Math.min(15000, CARD_TTL_S * 250)));  // a short TTL ages cards promptly
  setInterval(function () { if (Object.keys(recentAcks).length) refreshAlerts(); }, 15000);
  window.oneeyeDesk = {socket: socket, lastSeq: function () { return lastSeq; }};
})();
