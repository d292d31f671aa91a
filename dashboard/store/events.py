"""Stored desk events: add once per ``event_id``, read back in arrival order, purge.

Events are keyed by ``event_id`` (SNS retries and edge replays arrive twice; the second
copy is ignored, even after the first was purged: ``seen_events`` keeps ids longer).
Each stored event also gets a ``seq`` in arrival order: a reconnecting browser asks for
everything after the last event it saw, and an event that arrives late with an older
``event_id`` must still reach it, so catch-up follows arrival order, not id order.

A *record* (what the API and Socket.IO send) is ``{seq, event_id, site_id, kind,
observed_at, received_at, event, ack, feedback}``: ``event`` is the parsed body, ``ack``
``{by, at}`` or None, ``feedback`` ``{verdict, by, at}`` or None.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.engine import RowMapping

from dashboard.store.engine import Repository
from dashboard.store.schema import acks, events, feedback, seen_events
from oneeye.events import DeskEvent
from oneeye.types import format_time

log = logging.getLogger(__name__)

#: Every column a record is built from: the event, its acknowledgement and its verdict.
RECORD_SELECT: Select[Any] = (
    select(events.c.seq, events.c.event_id, events.c.site_id, events.c.kind,
           events.c.observed_at, events.c.received_at, events.c.body,
           acks.c.user_name.label("ack_by"), acks.c.acked_at.label("ack_at"),
           feedback.c.verdict, feedback.c.user_name.label("verdict_by"),
           feedback.c.given_at.label("verdict_at"))
    .select_from(events.outerjoin(acks, acks.c.event_id == events.c.event_id)
                 .outerjoin(feedback, feedback.c.event_id == events.c.event_id)))


def record(row: RowMapping) -> dict[str, Any]:
    """A row of :data:`RECORD_SELECT` as a record (see the module docstring)."""
    ack = {"by": row["ack_by"], "at": row["ack_at"]} if row["ack_by"] else None
    verdict = ({"verdict": row["verdict"], "by": row["verdict_by"], "at": row["verdict_at"]}
               if row["verdict"] else None)
    return {"seq": row["seq"], "event_id": row["event_id"], "site_id": row["site_id"],
            "kind": row["kind"], "observed_at": row["observed_at"],
            "received_at": row["received_at"], "event": json.loads(row["body"]), "ack": ack,
            "feedback": verdict}


def filters(sites: Sequence[str], *, person: str | None = None, since: str | None = None,
            until: str | None = None, kinds: Sequence[str] | None = None,
            unacked: bool = False, person_id: str | None = None) -> list[ColumnElement[bool]]:
    """WHERE terms over :data:`RECORD_SELECT`: ``person`` is a case-insensitive substring
    of the person's id or name; ``since``/``until`` bound ``observed_at`` (inclusive)."""
    where: list[ColumnElement[bool]] = [events.c.site_id.in_(list(sites))]
    if person:
        # "_" is an id character, not a wildcard: escape LIKE's metacharacters.
        literal = person.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
        pattern = f"%{literal}%"
        where.append(or_(func.lower(events.c.person_id).like(pattern, escape="!"),
                         func.lower(events.c.person_name).like(pattern, escape="!")))
    if person_id:
        where.append(events.c.person_id == person_id)
    if since:
        where.append(events.c.observed_at >= since)
    if until:
        where.append(events.c.observed_at <= until)
    if kinds:
        where.append(events.c.kind.in_(list(kinds)))
    if unacked:
        where.append(acks.c.event_id.is_(None))
    return where


class Events(Repository):
    def add(self, event: DeskEvent) -> dict[str, Any] | None:
        """Store ``event``; return its record, or None if this event_id was stored before
        (even if purged since).

        Raises ValueError for ``device_status``: a fleet sends one every 30 s per device,
        so it updates the device's row (:meth:`dashboard.store.devices.Devices.seen`) and
        only a change of state is recorded.
        """
        if event.kind == "device_status":
            raise ValueError("device_status updates a device (Devices.seen), it is no event")
        person_id = event.match.person_id if event.match else None
        details = event.customer or event.case or {}
        name = details.get("name") if isinstance(details.get("name"), str) else None
        agency = (event.case or {}).get("agency") if event.case else None
        now = self.now()
        with self.engine.begin() as conn:
            seen = conn.execute(select(seen_events.c.event_id)
                                .where(seen_events.c.event_id == event.event_id)).first()
            if seen is not None:
                return None
            # two processes storing one event at once: the unique event_id lets one in
            inserted = conn.execute(self.insert(events).values(
                event_id=event.event_id, site_id=event.site_id, kind=event.kind,
                observed_at=event.observed_at, received_at=now, person_id=person_id,
                person_name=name, device_id=event.device_id, body=event.to_json(),
                agency=agency if isinstance(agency, str) and agency else None,
            ).on_conflict_do_nothing(index_elements=["event_id"])).rowcount
            if not inserted:
                return None
            conn.execute(self.insert(seen_events).values(event_id=event.event_id,
                                                         received_at=now)
                         .on_conflict_do_nothing(index_elements=["event_id"]))
        return self.get(event.event_id)

    def get(self, event_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(RECORD_SELECT.where(events.c.event_id == event_id)
                               ).mappings().first()
        return record(row) if row else None

    def find(self, sites: Sequence[str], *, after: str | None = None,
             person: str | None = None, since: str | None = None, until: str | None = None,
             kinds: Sequence[str] | None = None, person_id: str | None = None,
             unacked: bool = False, offset: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        """Records of ``sites``: after an event (arrival order, oldest first) or newest first.

        ``offset`` pages newest-first results (history); ``after`` pages catch-up. An
        ``after`` id this store never saw falls back to id order (ids are time-ordered)
        instead of failing.
        """
        if not sites:
            return []
        where = filters(sites, person=person, since=since, until=until, kinds=kinds,
                        unacked=unacked, person_id=person_id)
        query = RECORD_SELECT
        if after is not None:
            known = select(events.c.seq).where(events.c.event_id == after).scalar_subquery()
            older = (select(func.coalesce(func.max(events.c.seq), 0))
                     .where(events.c.event_id <= after).scalar_subquery())
            where.append(events.c.seq > func.coalesce(known, older))
            query = query.order_by(events.c.seq.asc())
        else:
            query = query.order_by(events.c.seq.desc())
        query = query.where(and_(*where)).limit(limit).offset(max(offset, 0))
        with self.engine.connect() as conn:
            return [record(r) for r in conn.execute(query).mappings()]

    def count(self, sites: Sequence[str], *, person: str | None = None,
              since: str | None = None, until: str | None = None,
              kinds: Sequence[str] | None = None, person_id: str | None = None) -> int:
        """How many records :meth:`find` would page through with the same filters."""
        if not sites:
            return 0
        query = (select(func.count()).select_from(events)
                 .where(and_(*filters(sites, person=person, since=since, until=until,
                                      kinds=kinds, person_id=person_id))))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def purge(self, older_than_days: float, *, ids_older_than_days: float | None = None) -> int:
        """Delete events (and their acks, feedback) received before the cutoff; return how
        many. Their ids stay in ``seen_events`` for ``ids_older_than_days`` (at least as
        long as the events), so a replayed old message is still recognised as a duplicate.
        """
        now = datetime.fromtimestamp(self.clock(), UTC)
        ids_days = max(older_than_days, ids_older_than_days or older_than_days)
        cutoff = format_time(now - timedelta(days=older_than_days))
        old = select(events.c.event_id).where(events.c.received_at < cutoff)
        with self.engine.begin() as conn:
            conn.execute(seen_events.delete().where(
                seen_events.c.received_at < format_time(now - timedelta(days=ids_days))))
            conn.execute(acks.delete().where(acks.c.event_id.in_(old)))
            conn.execute(feedback.delete().where(feedback.c.event_id.in_(old)))
            removed = int(conn.execute(events.delete().where(
                events.c.received_at < cutoff)).rowcount)
        if removed:
            log.info("purged %d events received before %s", removed, cutoff)
        return removed
