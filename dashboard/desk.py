"""Server-rendered pages: the live desk, the review pages (history, camera events, one
person, CSV export), the local-mode alert outbox; /healthz."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask
from flask import Blueprint, Response, g, request
from werkzeug.wrappers import Response as WerkzeugResponse

from dashboard.api import day_or_time_arg, int_arg, kinds_arg, present
from dashboard.auth import login_required
from dashboard.localtime import local, viewer_zone
from dashboard.roles import DESK_ROLES, agency_of, home_of, role_of, roles_required
from dashboard.services import services
from oneeye.types import DEVICE_KINDS, SIGHTING_KINDS

log = logging.getLogger(__name__)
bp = Blueprint("desk", __name__)
ALERTS_MAX = 200
PAGE = 50
CSV_MAX = 5000


@bp.app_template_filter("local")
def _local(value: str | None) -> str:
    return local(value)


@bp.get("/")
@login_required
def index() -> Any:
    """The desk; an agency officer's ``/`` is their home, Cases (they have no desk)."""
    if role_of(g.user) not in DESK_ROLES:
        return flask.redirect(home_of(g.user))
    settings = services().settings
    return flask.render_template("desk.html", offline_after_s=settings.offline_after_s,
                                 page_size=settings.history_limit,
                                 card_ttl_s=settings.card_ttl_s,
                                 visit_window_s=settings.visit_window_s)


def _review(view: str, *, person_id: str | None = None) -> dict[str, Any]:
    """The filtered, paged events of a review page (history, camera events, one person)."""
    parts = services()
    kinds = kinds_arg() or (SIGHTING_KINDS if view == "sightings" else DEVICE_KINDS)
    if view == "sightings" and not set(kinds) <= set(SIGHTING_KINDS):
        kinds = SIGHTING_KINDS
    limit = int_arg("limit", PAGE, low=1, high=parts.settings.history_limit)
    offset = int_arg("offset", 0, low=0, high=10**9)
    filters: dict[str, Any] = {
        "person": (request.args.get("person") or "").strip()[:64] or None,
        "since": day_or_time_arg("since"), "until": day_or_time_arg("until"), "kinds": kinds,
        "person_id": person_id}
    rows = parts.store.events.find(g.user["sites"], offset=offset, limit=limit, **filters)
    args = {k: v for k, v in request.args.items() if k != "offset"}

    def page_url(at: int) -> str:
        return f"{request.path}?{urlencode({**args, 'offset': max(at, 0)})}"

    return {"events": [present(r) for r in rows], "offset": offset, "limit": limit,
            "total": parts.store.events.count(g.user["sites"], **filters), "view": view,
            "zone": viewer_zone().key, "page_url": page_url,
            "kinds": SIGHTING_KINDS if view == "sightings" else DEVICE_KINDS,
            "csv_url": flask.url_for("desk.export") + "?" + urlencode(
                {**args, "view": view, **({"person_id": person_id} if person_id else {})})}


@bp.get("/history")
@roles_required(*DESK_ROLES)
def history() -> str:
    """Sightings by default; camera events are their own view (``/history/cameras``)."""
    return flask.render_template("history.html", **_review("sightings"))


@bp.get("/history/cameras")
@roles_required(*DESK_ROLES)
def devices() -> str:
    return flask.render_template("history.html", **_review("devices"))


@bp.get("/people/<id:person_id>")
@roles_required(*DESK_ROLES)
def person(person_id: str) -> str:
    """Every sighting of one customer or case."""
    review = _review("sightings", person_id=person_id)
    names = [((r["event"].get("customer") or r["event"].get("case") or {}).get("name"))
             for r in review["events"]]
    return flask.render_template("person.html", person_id=person_id,
                           name=next((n for n in names if n), None), **review)


@bp.get("/history.csv")
@roles_required(*DESK_ROLES)
def export() -> Response:
    """The review's filters as CSV (up to ``CSV_MAX`` rows): UTC and the viewer's time."""
    view = request.args.get("view", "sightings")
    kinds = kinds_arg() or (DEVICE_KINDS if view == "devices" else SIGHTING_KINDS)
    rows = services().store.events.find(
        g.user["sites"], person=(request.args.get("person") or "").strip()[:64] or None,
        person_id=request.args.get("person_id") or None, since=day_or_time_arg("since"),
        until=day_or_time_arg("until"), kinds=kinds, limit=CSV_MAX)
    zone = viewer_zone()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["observed_at_utc", f"observed_at_local ({zone.key})", "kind", "site_id",
                     "camera_id", "person_id", "name", "distance", "margin", "acknowledged_by",
                     "acknowledged_at_utc", "verdict", "verdict_by", "event_id"])
    for r in rows:
        e = r["event"]
        m = e.get("match") or {}
        who = e.get("customer") or e.get("case") or {}
        writer.writerow([_cell(v) for v in (
            r["observed_at"], local(r["observed_at"], zone), r["kind"], r["site_id"],
            m.get("camera_id") or e.get("device_id") or "", m.get("person_id", ""),
            who.get("name", ""), m.get("distance", ""), m.get("margin", ""),
            (r["ack"] or {}).get("by", ""), (r["ack"] or {}).get("at", ""),
            (r["feedback"] or {}).get("verdict", ""), (r["feedback"] or {}).get("by", ""),
            r["event_id"])])
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=oneeye-history.csv"})


def _cell(value: Any) -> Any:
    """No formula injection: a spreadsheet must not run a name like ``=HYPERLINK(…)``."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/alerts")
@login_required
def alerts() -> str:
    """The alert outbox, scoped like everything else: a bank user's sites, or the messages
    about an officer's agency's cases (the ids its sightings' ``told`` entries name)."""
    path = services().settings.alert_outbox_path
    agency = agency_of(g.user)
    if agency:
        ids = services().store.cases.message_ids(agency)
        messages = read_alert_outbox(path, lambda m: bool(
            {m.get("message_id"), m.get("event_id")} & ids))
    else:
        sites = set(g.user["sites"])
        messages = read_alert_outbox(path, lambda m: m.get("site_id") in sites)
    return flask.render_template("alerts.html", path=path, messages=messages, agency=agency)


@bp.get("/outbox")
def outbox() -> WerkzeugResponse:
    """The page's old address (kept for one release)."""
    return flask.redirect(flask.url_for("desk.alerts"), code=308)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        ok = services().store.ping()
    except Exception as exc:  # the point of /healthz is to report, not to raise
        log.warning("healthz: database check failed: %s", exc)
        ok = False
    return flask.jsonify({"status": "ok" if ok else "degraded", "database": ok,
                    "async_mode": services().socketio.async_mode,
                    "user": g.user["name"] if g.get("user") else None}), 200 if ok else 503


def read_alert_outbox(path: Path | None,
                      visible: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Newest-first messages from a JSON-lines file or a directory of them that the viewer
    may see (``visible``: its ``site_id`` is one of theirs, or it is about their agency's case).

    Alerts carry names, contacts and snapshot links: a line no rule admits (or that is not
    JSON) cannot be shown to anyone safely, so it is left to ``oneeye outbox`` on the host.
    """
    if path is None or not path.exists():
        return []
    files = sorted(path.glob("*.json*")) if path.is_dir() else [path]
    out: list[dict[str, Any]] = []
    for file in files:
        try:
            lines = file.read_text(errors="replace").splitlines()
        except OSError as exc:
            log.warning("alert outbox: cannot read %s: %s", file, exc)
            continue
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and visible(item):
                out.append(item)
    return out[::-1][:ALERTS_MAX]
