// OneEye case page: live in the agency's Socket.IO room (dashboard/live.py). Any sighting,
// acknowledgement, verdict or closing of the agency's cases re-reads this page from the
// server and swaps its story in place, so the server's one rendering (times in the viewer's
// zone, dashboard/localtime.py) is the only one.
(function () {
  "use strict";
  var story = document.getElementById("story");
  if (!story) return;
  var waiting = null;
  function reload() {
    if (waiting) return;
    waiting = setTimeout(function () {
      waiting = null;
      fetch(location.pathname, {credentials: "same-origin", headers: {Accept: "text/html"}})
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("story");
          if (!fresh) return;
          // an officer halfway through confirming a close keeps the question open
          var open = story.querySelector("details.confirm[open]");
          var again = fresh.querySelector("details.confirm");
          if (open && again) again.open = true;
          story.replaceWith(fresh);
          story = fresh;
          document.body.dataset.updates = Number(document.body.dataset.updates || 0) + 1;
        })
        .catch(function () { /* the next push or a reload shows it */ });
    }, 150);
  }
  var socket = io({transports: ["websocket", "polling"]});
  socket.on("connect", function () { document.body.dataset.socket = "connected"; reload(); });
  socket.on("disconnect", function (reason) {
    document.body.dataset.socket = "disconnected";
    if (reason === "io server disconnect") window.location.href = "/login";
  });
  socket.on("logged_out", function () { socket.disconnect(); window.location.href = "/login"; });
  ["desk_event", "alert_ack", "ack", "feedback", "case_closed"].forEach(function (name) {
    socket.on(name, reload);
  });
})();
