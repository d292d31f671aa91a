// Shared by every page: the viewer's time zone and the one local time format.
// The server stores and answers UTC; this page tells it the viewer's IANA zone once
// (cookie "tz") so server-rendered pages (history, CSV) use the same zone.
(function () {
  "use strict";
  var zone = "UTC";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* old browser */ }
  if (document.cookie.indexOf("tz=" + encodeURIComponent(zone)) === -1) {
    document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; SameSite=Lax; max-age=31536000";
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function parts(iso) { var d = new Date(iso); return isNaN(d) ? null : d; }
  window.oneeyeTime = {
    zone: zone,
    // "14:05:09": the time part of the history page's "2026-01-31 14:05:09"
    clock: function (iso) {
      var d = parts(iso); if (!d) return String(iso || "");
      return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    },
    full: function (iso) {
      var d = parts(iso); if (!d) return String(iso || "");
      return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + this.clock(iso);
    }
  };
})();
