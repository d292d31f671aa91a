// Customers page: send a photo, then show the gallery indexer's verdict (as the phone page).
(function () {
  "use strict";
  var form = document.getElementById("photo-form");
  if (!form) return;
  var out = document.getElementById("verdict");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  function show(state, text) { out.className = "verdict-line " + state; out.dataset.state = state; out.textContent = text; }
  function poll(id, tries) {
    fetch("/manage/customers/photos/" + encodeURIComponent(id), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (st) {
        if (st.state === "pending") {
          if (tries > 120) return show("rejected", "no answer from the indexer yet — check again later");
          return setTimeout(function () { poll(id, tries + 1); }, 1000);
        }
        var label = {accepted: "Accepted: ", needs_review: "Held for a second look: "}[st.state] || "Rejected: ";
        show(st.state, label + (st.message || st.reason || ""));
      }).catch(function () { setTimeout(function () { poll(id, tries + 1); }, 2000); });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    show("pending", "Checking the photo…");
    fetch("/manage/customers/photos", {method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": csrf}, body: new FormData(form)})
      .then(function (r) { return r.json().then(function (b) { return {ok: r.ok, body: b}; }); })
      .then(function (res) {
        if (!res.ok) return show("rejected", "Rejected: " + (res.body.message || res.body.reason || "refused"));
        poll(res.body.upload_id, 0);
      }).catch(function () { show("rejected", "the upload failed — try again"); });
  });
})();
