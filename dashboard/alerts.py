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
  A verdict or "served" belongs to the visit (:mod:`dashboard.store.visits`); a card
  leaves the desk when served or ``card_ttl_s`` after its last sighting (:func:`on_desk`).

The email/SMS side follows the same grouping: ``amber_alert`` sends one email/SMS per
case per site and cooldown, and marks each desk sighting with ``case.notified`` (true for
the sighting that sent it), so the banner says whether the agency was told.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from oneeye.alerting import strength, told_text
from oneeye.types import parse_time

__all__ = ["agency_of_record", "camera_of", "group_alerts", "group_visits", "on_desk", "strength",
           "subject_of", "with_marks"]

#: Default visit window (s): a customer seen again within 15 minutes is the same visit.
VISIT_WINDOW_S = 900.0


def subject_of(record: Mapping[str, Any]) -> str:
    """The id an alert is about: the case id of a sighting, the device id of an outage."""
    event = record["event"]
    if record["kind"] == "missing_person_sighted":
        return str((event.get("match") or {}).get("person_id")
                   or (event.get("case") or {}).get("id") or "?")
    return str(event.get("device_id") or "?")


def agency_of_record(record: Mapping[str, Any]) -> str | None:
    """The agency of a stored sighting (its ``case.agency``: the officer's scope), None for
    anything else."""
    if record.get("kind") != "missing_person_sighted":
        return None
    agency = (record.get("event", {}).get("case") or {}).get("agency")
    return str(agency) if agency else None


def camera_of(record: Mapping[str, Any]) -> str:
    event = record["event"]
    return str((event.get("match") or {}).get("camera_id") or event.get("device_id") or "?")


def group_alerts(records: Iterable[Mapping[str, Any]],
                 last_acks: Mapping[str, Any] | None = None,
                 time_zone: str | None = None) -> list[dict[str, Any]]:
    """Open alert records (oldest first) → one group per (kind, subject), newest first.

    Each group: ``kind``, ``subject``, ``count``, ``cameras`` (in first-seen order),
    ``sites``, ``first_at``/``last_at`` (UTC), ``upto_seq`` (acknowledge up to here),
    ``event_ids``, ``latest`` (the newest record: evidence, contact, snapshot),
    ``notified`` (any sighting of the group sent email/SMS), ``told_text`` (who was told,
    from the sightings' ``case.told``, its times in ``time_zone`` — the viewer's, like every
    other time on the desk — or ``case.told_text`` as sent (the agency's zone) for a
    sighting without ``told``; absent for sightings from before either) and
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
                told = case.get("told")
                group["_told_rank"] = rank
                group["told_text"] = (told_text(told, time_zone) if isinstance(told, list)
                                      else str(case["told_text"]))
    for group in groups.values():
        group.pop("_told_rank", None)
    return sorted(groups.values(), key=lambda g: g["upto_seq"], reverse=True)


def group_visits(records: Iterable[Mapping[str, Any]],
                 window_s: float = VISIT_WINDOW_S) -> list[dict[str, Any]]:
    """Sighting records (any order) → visits, newest *first arrival* first.

    A visit is one person at one site (one ``kind``), each sighting less than ``window_s``
    seconds after the previous one. Each visit: ``visit_id`` (its first event's id, the
    key of its verdict and "served", :mod:`dashboard.store.visits`), ``kind``,
    ``person_id``, ``site_id``, ``count``, ``cameras``, ``first_at``/``last_at`` (UTC),
    ``event_ids`` and ``latest`` (the newest record, whose details the card shows).

    Order is stable: by when the visit began, so a later sighting updates its card in
    place and never moves it; a new visit comes first.
    """
    ordered = sorted(records, key=lambda r: (r["observed_at"], r["seq"]))
    open_visits: dict[tuple[str, str, str], dict[str, Any]] = {}
    visits: list[dict[str, Any]] = []
    for rec in ordered:
        person = str((rec["event"].get("match") or {}).get("person_id") or rec["event_id"])
        kind = str(rec.get("kind") or "customer_arrived")
        key = (person, str(rec["site_id"]), kind)
        visit = open_visits.get(key)
        at = parse_time(rec["observed_at"])
        if visit is None or (at - parse_time(visit["last_at"])).total_seconds() >= window_s:
            visit = {"visit_id": rec["event_id"], "kind": kind, "person_id": person,
                     "site_id": rec["site_id"], "count": 0, "cameras": [],
                     "first_at": rec["observed_at"], "event_ids": []}
            open_visits[key] = visit
            visits.append(visit)
        visit["count"] += 1
        visit["event_ids"].append(rec["event_id"])
        visit["last_at"] = rec["observed_at"]
        visit["latest"] = rec
        camera = camera_of(rec)
        if camera not in visit["cameras"]:
            visit["cameras"].append(camera)
    return sorted(visits, key=lambda v: (v["first_at"], v["visit_id"]), reverse=True)


def with_marks(visits: Iterable[dict[str, Any]],
               marks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each visit with its ``verdict`` and ``served`` (None when nobody decided) from the
    stored marks (:meth:`dashboard.store.visits.Visits.overlapping`). A mark belongs to
    the visit of its person and site whose time span it overlaps: a visit grouped again
    from a shorter page of events may start later than the decided one, and keeps the
    decided one's ``visit_id``."""
    marks = list(marks)
    out: list[dict[str, Any]] = []
    for visit in visits:
        found = next((m for m in marks if m["site_id"] == visit["site_id"]
                      and m["person_id"] == visit["person_id"]
                      and m["first_at"] <= visit["last_at"]
                      and m["last_at"] >= visit["first_at"]), None)
        out.append({**visit, "visit_id": found["visit_id"] if found else visit["visit_id"],
                    "verdict": found["verdict"] if found else None,
                    "served": found["served"] if found else None})
    return out


def on_desk(visit: Mapping[str, Any], now: datetime, card_ttl_s: float) -> bool:
    """A visit's card is on the desk until it is served or ``card_ttl_s`` after its last
    sighting; then it is in History only."""
    if visit.get("served"):
        return False
    return (now - parse_time(visit["last_at"])).total_seconds() < card_ttl_s
