# Long module: the JSON API is one blueprint whose endpoints share one parameter grammar
# (ids, times, paging) and one record shape (present); split, both would be imported back.
"""JSON API of the desk page: events (history, catch-up), alerts, visits, devices,
acknowledgements and verdicts.

Every endpoint filters by the logged-in user's sites; an event of another site is
answered exactly like one that does not exist (404). Times in and out are UTC
(``oneeye.types``); the page shows them in the viewer's zone. Agency officers have
no desk (their page is the case list), so these endpoints are for desk roles only.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, request

from dashboard import alerts
from dashboard.alerts import agency_of_record
from dashboard.localtime import day_bound, viewer_zone
from dashboard.roles import DESK_ROLES, roles_required
from dashboard.services import services
from oneeye.alerting import SAFETY_LINE, skew_note, strength_text
from oneeye.errors import EventError, OneEyeError
from oneeye.events import HEALTH, HealthEvent, parse
from oneeye.types import ALERT_KINDS, DESK_KINDS, VERDICTS, format_time, normalize_time, parse_time

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")
_DATETIME_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
KINDS = DESK_KINDS


def time_arg(name: str) -> str | None:
    """Query parameter ``name`` as a UTC timestamp (the one format), or None if absent.

    Any ISO-8601 form with a zone is accepted (``Z``, ``+05:30``, ``-0800``, 1–9 fractional
    digits); a ``+`` that arrived unencoded (as a space) is restored. A browser's
    ``datetime-local`` value (``2026-01-31T12:00``, no zone) is in the viewer's zone
    (:func:`dashboard.localtime.viewer_zone`, UTC when unknown), like the date inputs.
    Stored times are normalised UTC strings, so comparing strings then compares instants.
    Anything else is a 400.
    """
    value = (request.args.get(name) or "").strip() or None
    if value is None:
        return None
    value = re.sub(r" (\d{2}:?\d{2})$", r"+\1", value)
    try:
        if _DATETIME_LOCAL.fullmatch(value):  # a browser's datetime-local input: no zone
            return format_time(datetime.fromisoformat(value).replace(tzinfo=viewer_zone()))
        return normalize_time(value)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01 east of UTC, 9999-12-31 west
        abort(400, description=f"{name} must be an ISO-8601 time with a zone, like "
                               "2026-01-31T12:00:00Z or 2026-01-31T17:30:00+05:30")


def day_or_time_arg(name: str) -> str | None:
    """Like :func:`time_arg`, and also ``YYYY-MM-DD``: that day in the viewer's zone (the
    review pages' date inputs; ``until`` is the day's last millisecond)."""
    value = (request.args.get(name) or "").strip()
    if _DATE.fullmatch(value):
        try:
            return day_bound(value, end=name == "until", zone=viewer_zone())
        except (ValueError, OverflowError):  # 2026-02-30, 2026-13-45; the day after 9999-12-31
            abort(400, description=f"{name} must be a real date YYYY-MM-DD, "
                                   f"not {value}")
    return time_arg(name)


def kinds_arg() -> tuple[str, ...] | None:
    """``kind=a`` or ``kind=a,b`` (each a ``DeskKind``); None for all."""
    raw = request.args.get("kind") or ""
    wanted = tuple(k for k in raw.split(",") if k)
    for kind in wanted:
        if kind not in KINDS:
            abort(400, description=f"kind must be one of {', '.join(KINDS)}")
    return wanted or None


#: The largest integer any numeric parameter may carry: a signed 64-bit column's (the
#: event ``seq`` on PostgreSQL is BIGINT); anything larger is a 400, not a database error.
INT_MAX = 2**63 - 1


def int_arg(name: str, default: int, *, low: int, high: int) -> int:
    """Query parameter ``name`` as an integer: 400 unless it is one between ``low`` and
    :data:`INT_MAX`; values above ``high`` (a page size or offset's maximum) mean ``high``."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:  # also digits beyond Python's int-parsing limit (4300)
        abort(400, description=f"{name} must be a whole number")
    if not low <= value <= INT_MAX:
        abort(400, description=f"{name} must be a whole number from {low} to {high}")
    return min(value, high)


def present(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as the page gets it: plus the match's plain-language ``strength``
    and its words ``strength_text``, as the cloud function that made the card decided
    them (``oneeye.desk/1`` ``strength``; the same words as the SMS and email)."""
    event = record.get("event", {})
    if event.get("strength"):
        return {**record, "strength": event["strength"],
                "strength_text": event.get("strength_text") or ""}
    match = event.get("match")
    if isinstance(match, dict) and "distance" in match and "margin" in match:
        # Fallback for events stored before the cloud carried the strength (older rows
        # of the history); new events never reach this line. Remove once those rows have
        # aged out (retention_days).
        d, m = float(match["distance"]), float(match["margin"])
        return {**record, "strength": alerts.strength(d, m),
                "strength_text": strength_text(d, m)}
    return record


@bp.get("/events")
@roles_required(*DESK_ROLES)
def events() -> Response:
    """Newest first (``offset`` pages), or after an event id in arrival order (catch-up:
    page with the last id until fewer than ``limit`` come back)."""
    limit_max = services().settings.history_limit
    limit = int_arg("limit", limit_max, low=1, high=limit_max)
    rows = services().store.events.find(g.user["sites"], after=request.args.get("after") or None,
                           person=(request.args.get("person") or "").strip()[:64] or None,
                           person_id=request.args.get("person_id") or None,
                           since=time_arg("since"), until=time_arg("until"), kinds=kinds_arg(),
                           unacked=request.args.get("unacked") == "1",
                           offset=int_arg("offset", 0, low=0, high=10**9), limit=limit)
    return jsonify({"events": [present(r) for r in rows], "limit": limit})


@bp.get("/alerts")
@roles_required(*DESK_ROLES)
def open_alerts() -> Response:
    """Every open alert, one group per case or device (``dashboard.alerts``)."""
    store = services().store
    sites = g.user["sites"]
    records = store.alerts.open(sites)
    groups = alerts.group_alerts([present(r) for r in records], store.alerts.last_acks(
        sites, sorted({alerts.subject_of(r) for r in records})), viewer_zone().key)
    cases = [gr["subject"] for gr in groups if gr["kind"] == "missing_person_sighted"]
    closed = store.cases.closed(cases)
    for group in groups:
        if group["kind"] == "missing_person_sighted":
            # one case, one story: the case's count at these sites (not only the open
            # sightings of a re-raised banner), whether it was closed, the safety line
            group["total"] = store.events.count(sites, kinds=("missing_person_sighted",),
                                                person_id=group["subject"])
            group["closed"] = closed.get(group["subject"])
            group["safety"] = SAFETY_LINE
    return jsonify({"alerts": groups})


@bp.post("/alerts/ack")
@roles_required(*DESK_ROLES)
def acknowledge_alert() -> Response:
    """``{kind, subject, upto_seq}``: one Acknowledge for a banner's whole group."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("kind") not in ALERT_KINDS \
            or not isinstance(body.get("subject"), str) \
            or not isinstance(body.get("upto_seq"), int) or isinstance(body["upto_seq"], bool):
        abort(400, description="send {kind, subject, upto_seq} of the banner")
    if not 0 <= body["upto_seq"] <= INT_MAX:
        abort(400, description=f"upto_seq must be an event seq from 0 to {INT_MAX}")
    parts = services()
    user = g.user["name"]
    acked = parts.store.alerts.acknowledge_group(g.user["sites"], body["kind"], body["subject"],
                                    body["upto_seq"], user)
    if not acked:
        abort(404, description="no open alert like that")
    at, event_ids = acked[0]["at"], [a["event_id"] for a in acked]
    for site in sorted({a["site_id"] for a in acked}):
        parts.store.audit.add(user, "acknowledged", body["subject"], site_id=site,
                              kind=body["kind"], events=len(acked), upto_seq=body["upto_seq"])
        parts.live.emit("alert_ack", {
            "kind": body["kind"], "subject": body["subject"], "site_id": site,
            "upto_seq": body["upto_seq"], "by": user, "at": at, "event_ids": event_ids},
            agency=_agency_of_event(event_ids[0]))
    log.info("%s acknowledged %d %s alert(s) about %s", user, len(acked), body["kind"],
             body["subject"])
    return jsonify({"kind": body["kind"], "subject": body["subject"], "by": user, "at": at,
                    "event_ids": event_ids})


@bp.get("/arrivals")
@roles_required(*DESK_ROLES)
def arrivals() -> Response:
    """Customer visits on the desk (not served, last sighting less than ``card_ttl_s``
    ago), newest first arrival first, each with its ``visit_id``, ``verdict`` and
    ``served``; ``all=1`` also gives the visits that left the desk."""
    parts = services()
    settings = parts.settings
    limit = int_arg("limit", 24, low=1, high=200)
    rows = parts.store.events.find(g.user["sites"], kinds=("customer_arrived",),
                                   limit=limit * 4)
    grouped = alerts.group_visits([present(r) for r in rows], settings.visit_window_s)
    since = min((v["first_at"] for v in grouped), default=format_time(datetime.now(UTC)))
    visits = alerts.with_marks(grouped, parts.store.visits.overlapping(g.user["sites"], since))
    now = datetime.fromtimestamp(parts.store.clock(), UTC)
    if request.args.get("all") != "1":
        visits = [v for v in visits if alerts.on_desk(v, now, settings.card_ttl_s)]
    return jsonify({"visits": visits[:limit], "window_s": settings.visit_window_s,
                    "card_ttl_s": settings.card_ttl_s, "server_time": format_time(now)})


def _own_visit(visit_id: str) -> dict[str, Any]:
    """The visit that begins with event ``visit_id`` (a sighting of the user's sites), as
    :func:`dashboard.alerts.group_visits` makes it from the sightings since; 404 else."""
    record = _own_event(visit_id)
    match = record["event"].get("match")
    if not match:
        abort(400, description="only a sighting (with a match) begins a visit")
    parts = services()
    rows = parts.store.events.find([record["site_id"]], person_id=str(match["person_id"]),
                                   kinds=(record["kind"],), since=record["observed_at"],
                                   limit=parts.settings.history_limit)
    grouped = alerts.group_visits([r for r in rows if r["event_id"] == visit_id or
                                   r["observed_at"] > record["observed_at"]],
                                  parts.settings.visit_window_s)
    visit = next(v for v in grouped if v["visit_id"] == visit_id)
    stored = parts.store.visits.get(visit_id)
    return {**visit, "verdict": (stored or {}).get("verdict"),
            "served": (stored or {}).get("served")}


def _tell(mark: dict[str, Any], visit: dict[str, Any]) -> None:
    """Push a visit's new mark to its site's desks (event ``visit``)."""
    services().live.emit("visit", {**mark, "kind": visit["kind"],
                                   "event_ids": visit["event_ids"]})


@bp.post("/visits/<visit_id>/verdict")
@roles_required(*DESK_ROLES)
def visit_verdict(visit_id: str) -> Response:
    """``{verdict: confirmed | rejected | null}`` on a whole visit (a card or a banner):
    every sighting in it, and every later one that joins it, carries the verdict; null
    undoes it. Audited with who and when; pushed to the site's desks as ``visit``. A
    verdict given also queues learning from the visit's newest sighting (its ``encoding``,
    sent only for a watchlist that learns); the answer's ``learning`` says what happened
    (``queued``, ``no_encoding``, ``no_cloud``, ``failed``, ``undone``)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "verdict" not in body \
            or body["verdict"] not in (*VERDICTS, None):
        abort(400, description=f"verdict must be one of {', '.join(VERDICTS)}, or null "
                               "to undo")
    visit = _own_visit(visit_id)
    parts = services()
    user = g.user["name"]
    mark = parts.store.visits.decide(visit, body["verdict"], user)
    latest = visit["latest"]["event"].get("match") or {}
    parts.store.audit.add(user, body["verdict"] or "verdict_undone", visit_id,
                          site_id=visit["site_id"], person_id=visit["person_id"],
                          camera_id=latest.get("camera_id"), watchlist=latest.get("watchlist"),
                          events=len(visit["event_ids"]))
    log.info("visit %s (%d sightings) %s by %s", visit_id, len(visit["event_ids"]),
             body["verdict"] or "verdict undone", user)
    learning = _learn(latest, body["verdict"], user) if body["verdict"] else "undone"
    _tell(mark, visit)
    return jsonify({**mark, "learning": learning})


def _learn(match: dict[str, Any], verdict: str, user: str) -> str:
    """Queue what a verdict teaches (``Cloud.learn_from_verdict``): once per verdict given,
    from one sighting's encoding (a visit's: its newest). The verdict stands whatever the
    cloud says, so a failure is logged and reported as ``failed``, never raised. An undo
    takes back nothing learnt: the branch admin removes a template on the person's page."""
    try:
        return services().cloud.learn_from_verdict(match, verdict, user)
    except OneEyeError as exc:
        log.warning("event %s: the verdict's template was not queued: %s",
                    match.get("event_id"), exc)
        return "failed"


@bp.post("/visits/<visit_id>/served")
@roles_required(*DESK_ROLES)
def visit_served(visit_id: str) -> Response:
    """The teller served this customer: the card leaves every desk of the site for
    History (the first "served" counts). Audited; pushed as ``visit``."""
    visit = _own_visit(visit_id)
    parts = services()
    mark = parts.store.visits.serve(visit, g.user["name"])
    parts.store.audit.add(g.user["name"], "served", visit_id, site_id=visit["site_id"],
                          person_id=visit["person_id"])
    _tell(mark, visit)
    return jsonify(mark)


@bp.get("/devices")
@roles_required(*DESK_ROLES)
def devices() -> Response:
    """Devices of the user's sites, each with its ``cameras`` (``oneeye.health/1``'s
    per-camera entries: state, fps, frame age). ``online`` is the cloud's word (the last
    ``device_offline`` / ``device_online`` applied), not a timer here. Every fps is null
    when the device is not online: a frozen figure would look healthy."""
    parts = services()
    offline_after = parts.settings.offline_after_s
    now = datetime.fromtimestamp(parts.store.clock(), UTC)
    out: list[dict[str, Any]] = []
    for row in parts.store.devices.of_sites(g.user["sites"]):
        health = row.pop("health", None)
        age = (now - parse_time(row["last_seen"])).total_seconds()
        online = row["state"] == "online"
        out.append({**row, "online": online, "age_s": round(age, 1),
                    "fps": row["fps"] if online else None,
                    "cameras": _cameras(health, online), "notes": _device_notes(health)})
    return jsonify({"devices": out, "offline_after_s": offline_after,
                    "server_time": format_time(now)})


def _device_notes(health: str | None) -> list[str]:
    """What needs a person's eye in a device's last health, in words for the camera panel:
    a clock the cloud found off (``clock.state`` skewed) or that jumped, a store that
    cannot be written (``storage``), a client id that seems shared."""
    if not health:
        return []
    try:
        event = parse(health, expect=HEALTH)
    except EventError:
        return []
    assert isinstance(event, HealthEvent)
    notes: list[str] = []
    if event.clock is not None and event.clock.state == "skewed" and event.clock.skew_s:
        notes.append(skew_note(event.clock.skew_s))
    elif event.clock is not None and event.clock.state in ("jumped", "unsynced"):
        notes.append(f"device clock {event.clock.state}")
    for name, store in sorted((event.storage or {}).items()):
        if store.state != "ok":
            notes.append(f"{name.replace('_', ' ')} storage {store.state.replace('_', ' ')}")
    if event.client_id_conflict:
        notes.append("client id may be shared with another device")
    return notes


def _cameras(health: str | None, online: bool) -> list[dict[str, Any]]:
    """Every camera of a device's last ``oneeye.health/1`` (``cameras``), by id; fps and
    frame age are null when the device is not online."""
    if not health:
        return []
    try:
        event = parse(health, expect=HEALTH)
    except EventError:
        log.warning("stored health of a device does not validate; its cameras are not shown")
        return []
    assert isinstance(event, HealthEvent)
    return [{"camera_id": camera_id, "state": cam.state,
             "fps": cam.fps if online else None,
             "frame_age_ms": cam.frame_age_ms if online else None,
             "dropped_frames": cam.dropped_frames}
            for camera_id, cam in sorted((event.cameras or {}).items())]


def _agency_of_event(event_id: str) -> str | None:
    record = services().store.events.get(event_id)
    return agency_of_record(record) if record else None


def _own_event(event_id: str) -> dict[str, Any]:
    record = services().store.events.get(event_id)
    if record is None or record["site_id"] not in g.user["sites"]:
        abort(404)
    return record


@bp.post("/events/<event_id>/ack")
@roles_required(*DESK_ROLES)
def acknowledge(event_id: str) -> Response:
    record = _own_event(event_id)
    parts = services()
    ack = parts.store.alerts.acknowledge(event_id, g.user["name"])
    parts.store.audit.add(g.user["name"], "acknowledged", event_id, site_id=record["site_id"],
                          kind=record["kind"])
    log.info("event %s acknowledged by %s", event_id, ack["by"])
    parts.live.emit("ack", {**ack, "site_id": record["site_id"]},
                    agency=agency_of_record(record))
    return jsonify(ack)


@bp.post("/events/<event_id>/feedback")
@roles_required(*DESK_ROLES)
def feedback(event_id: str) -> Response:
    """``{verdict: confirmed | rejected}`` on a sighting, recorded with who and when."""
    record = _own_event(event_id)
    body = request.get_json(silent=True)
    verdict = body.get("verdict") if isinstance(body, dict) else None
    if verdict not in VERDICTS:
        abort(400, description=f"verdict must be one of {', '.join(VERDICTS)}")
    if not record["event"].get("match"):
        abort(400, description="only a sighting (with a match) takes a verdict")
    parts = services()
    given = parts.store.verdicts.give(event_id, verdict, g.user["name"])
    match = record["event"]["match"]
    parts.store.audit.add(g.user["name"], verdict, event_id, site_id=record["site_id"],
                          person_id=match.get("person_id"), camera_id=match.get("camera_id"),
                          watchlist=match.get("watchlist"))
    log.info("event %s %s by %s", event_id, verdict, g.user["name"])
    learning = _learn(match, verdict, g.user["name"])
    parts.live.emit("feedback", {**given, "site_id": record["site_id"]},
                    agency=agency_of_record(record))
    return jsonify({**given, "learning": learning})
