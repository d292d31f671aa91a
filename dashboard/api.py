"""JSON API for the desk page: events (history, catch-up), devices, acknowledgements.

Every endpoint filters by the logged-in user's sites; an event of another site
is answered exactly like one that does not exist (404).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request

from dashboard.auth import login_required
from oneeye.types import format_time, normalize_time, parse_time

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")
_DATETIME_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
KINDS = ("customer_arrived", "missing_person_sighted", "device_status", "device_offline")


def time_arg(name: str) -> str | None:
    """Query parameter ``name`` as a UTC timestamp (the one format), or None if absent.

    Any ISO-8601 form with a zone is accepted (``Z``, ``+05:30``, ``-0800``, 1–9 fractional
    digits); a ``+`` that arrived unencoded (as a space) is restored. A browser's
    ``datetime-local`` value (``2026-01-31T12:00``, no zone) is taken as UTC. Stored times
    are normalised UTC strings, so comparing strings then compares instants. 400 otherwise.
    """
    value = (request.args.get(name) or "").strip() or None
    if value is None:
        return None
    value = re.sub(r" (\d{2}:?\d{2})$", r"+\1", value)
    local = _DATETIME_LOCAL.fullmatch(value)
    if local:  # a browser's datetime-local input
        value += "Z" if local.group(1) else ":00Z"
    try:
        return normalize_time(value)
    except ValueError:
        abort(400, description=f"{name} must be an ISO-8601 time with a zone, like "
                               "2026-01-31T12:00:00Z or 2026-01-31T17:30:00+05:30")


@bp.get("/events")
@login_required
def events() -> Response:
    kind = request.args.get("kind") or None
    if kind is not None and kind not in KINDS:
        abort(400, description=f"kind must be one of {', '.join(KINDS)}")
    limit_max = current_app.config["ONEEYE_HISTORY_LIMIT"]
    try:
        limit = min(int(request.args.get("limit", limit_max)), limit_max)
    except ValueError:
        abort(400, description="limit must be a number")
    store = current_app.extensions["oneeye.store"]
    rows = store.events(g.user["sites"], after=request.args.get("after") or None,
                        person=(request.args.get("person") or "").strip()[:64] or None,
                        since=time_arg("since"), until=time_arg("until"), kind=kind,
                        unacked=request.args.get("unacked") == "1", limit=max(limit, 1))
    return jsonify({"events": rows})


@bp.get("/devices")
@login_required
def devices() -> Response:
    store = current_app.extensions["oneeye.store"]
    offline_after = current_app.config["ONEEYE_OFFLINE_AFTER_S"]
    now = datetime.fromtimestamp(store.clock(), UTC)
    out: list[dict[str, Any]] = []
    for row in store.devices(g.user["sites"]):
        seen = parse_time(row["last_seen"])
        age = (now - seen).total_seconds()
        online = row["state"] == "online" and age <= offline_after
        out.append({**row, "online": online, "age_s": round(age, 1)})
    return jsonify({"devices": out, "offline_after_s": offline_after,
                    "server_time": format_time(now)})


@bp.post("/events/<event_id>/ack")
@login_required
def acknowledge(event_id: str) -> Response:
    store = current_app.extensions["oneeye.store"]
    record = store.get_event(event_id)
    if record is None or record["site_id"] not in g.user["sites"]:
        abort(404)
    ack = store.acknowledge(event_id, g.user["name"])
    log.info("event %s acknowledged by %s", event_id, ack["by"])
    current_app.extensions["oneeye.live"].publish_ack(record["site_id"], ack)
    return jsonify(ack)
