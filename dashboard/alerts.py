"""The desk's grouping policy: one banner per case or device, one card per customer visit.

Pure functions over stored event records (``Events.find`` / ``Alerts.open`` of
:mod:`dashboard.store`), so the API, the page's first load and the tests agree on one policy:

- **Alerts** (``missing_person_sighted``, ``device_offline``): every open (unacknowledged)
  alert about one subject — a case id, or a device id — is one group: "seen 3× on cam-1
  and cam-3, last 04:10". One acknowledgement closes the group up to the newest event the
  person saw (``upto_seq``); a sighting after that opens the group again, marked
  ``reraised`` with the previous acknowledgement, so it cannot pass as the old banner.
- **Visits** (``customer_arrived``): arrivals of one customer at one site less than
  ``window_s`` apart are one visit (one card, with a count), the way a teller thinks of it.

The email/SMS side follows the same grouping: ``amber_alert`` sends one email/SMS per
case per site and cooldown, and marks each desk sighting with ``case.notified`` (true for
the sighting that sent it), so the banner says whether the agency was told.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from oneeye.alerting import strength
from oneeye.types import parse_time

__all__ = ["camera_of", "group_alerts", "group_visits", "strength", "subject_of"]

#: Default visit window (s): a customer seen again within 15 minutes is the same visit.
VISIT_WINDOW_S = 900.0


def subject_of(record: Mapping[str, Any]) -> str:
    """The id an alert is about: the case id of a sighting, the device id of an outage."""
    event = record["event"]
    if record["kind"] == "missing_person_sighted":
        return str((event.get("match") or {}).get("person_id")
                   or (event.get("case") or {}).get("id") or "?")
    return str(event.get("device_id") or "?")


def camera_of(record: Mapping[str, Any]) -> str:
    event = record["event"]
    return str((event.get("match") or {}).get("camera_id") or event.get("device_id") or "?")


def group_alerts(records: Iterable[Mapping[str, Any]],
                 last_acks: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Open alert records (oldest first) → one group per (kind, subject), newest first.

    Each group: ``kind``, ``subject``, ``count``, ``cameras`` (in first-seen order),
    ``sites``, ``first_at``/``last_at`` (UTC), ``upto_seq`` (acknowledge up to here),
    ``event_ids``, ``latest`` (the newest record: evidence, contact, snapshot),
    ``notified`` (any sighting of the group sent email/SMS), ``told_text`` (who was told,
    from the sightings' ``case.told_text``; absent for sightings from before it) and
    ``reraised`` (the
    previous acknowledgement ``{by, at}`` when the subject was acknowledged before).
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records:
        key = (str(rec["kind"]), subject_of(rec))
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "kind": key[0], "subject": key[1], "count": 0, "cameras": [], "sites": [],
                "first_at": rec["observed_at"], "event_ids": [], "notified": False,
                "reraised": (last_acks or {}).get(key[1]),
            }
        group["count"] += 1
        group["event_ids"].append(rec["event_id"])
        camera = camera_of(rec)
        if camera not in group["cameras"]:
            group["cameras"].append(camera)
        if rec["site_id"] not in group["sites"]:
            group["sites"].append(rec["site_id"])
        group["first_at"] = min(group["first_at"], rec["observed_at"])
        if "last_at" not in group or rec["observed_at"] >= group["last_at"]:
            group["last_at"] = rec["observed_at"]
            group["latest"] = rec
        group["upto_seq"] = max(group.get("upto_seq", 0), int(rec["seq"]))
        case = rec["event"].get("case") or {}
        group["notified"] = group["notified"] or bool(case.get("notified"))
        # Who was told, as amber_alert recorded it (case.told_text): the newest sighting that
        # messaged someone, else the newest sighting's (cooldown, invalid, failed).
        if case.get("told_text"):
            sent = any(t.get("outcome") == "sent" for t in case.get("told") or [])
            rank = (sent, rec["observed_at"])
            if rank >= group.get("_told_rank", (False, "")):
                group["_told_rank"], group["told_text"] = rank, str(case["told_text"])
    for group in groups.values():
        group.pop("_told_rank", None)
    return sorted(groups.values(), key=lambda g: g["upto_seq"], reverse=True)


def group_visits(records: Iterable[Mapping[str, Any]],
                 window_s: float = VISIT_WINDOW_S) -> list[dict[str, Any]]:
    """``customer_arrived`` records (any order) → visits, newest first.

    A visit is one customer at one site, each arrival less than ``window_s`` seconds
    after the previous one. Each visit: ``person_id``, ``site_id``, ``count``,
    ``cameras``, ``first_at``/``last_at`` (UTC), ``event_ids`` and ``latest`` (the
    newest record, whose customer details the card shows).
    """
    ordered = sorted(records, key=lambda r: (r["observed_at"], r["seq"]))
    open_visits: dict[tuple[str, str], dict[str, Any]] = {}
    visits: list[dict[str, Any]] = []
    for rec in ordered:
        person = str((rec["event"].get("match") or {}).get("person_id") or rec["event_id"])
        key = (person, str(rec["site_id"]))
        visit = open_visits.get(key)
        at = parse_time(rec["observed_at"])
        if visit is None or (at - parse_time(visit["last_at"])).total_seconds() >= window_s:
            visit = {"person_id": person, "site_id": rec["site_id"], "count": 0,
                     "cameras": [], "first_at": rec["observed_at"], "event_ids": []}
            open_visits[key] = visit
            visits.append(visit)
        visit["count"] += 1
        visit["event_ids"].append(rec["event_id"])
        visit["last_at"] = rec["observed_at"]
        visit["latest"] = rec
        camera = camera_of(rec)
        if camera not in visit["cameras"]:
            visit["cameras"].append(camera)
    return sorted(visits, key=lambda v: (v["last_at"], v["latest"]["seq"]), reverse=True)
