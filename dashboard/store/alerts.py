"""Acknowledgements: of one event, and of a banner's whole group of open alerts.

The first acknowledgement of an event wins (a second click, or a second teller, changes
nothing). Grouping alerts into one banner per case or device is
:func:`dashboard.alerts.group_alerts`; this module finds the open ones and closes a group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select

from dashboard.store.engine import Repository
from dashboard.store.events import RECORD_SELECT, filters, record
from dashboard.store.schema import acks, events
from oneeye.types import ALERT_KINDS


class Alerts(Repository):
    def acknowledge(self, event_id: str, user: str) -> dict[str, Any]:
        """Record who acknowledged an event; return the acknowledgement that counts
        ``{event_id, by, at}`` (the first one)."""
        with self.engine.begin() as conn:
            conn.execute(self.insert(acks).values(event_id=event_id, user_name=user,
                                                  acked_at=self.now())
                         .on_conflict_do_nothing(index_elements=["event_id"]))
            row = conn.execute(select(acks.c.user_name, acks.c.acked_at)
                               .where(acks.c.event_id == event_id)).one()
        return {"event_id": event_id, "by": row.user_name, "at": row.acked_at}

    def open(self, sites: Sequence[str], *, limit: int = 5000) -> list[dict[str, Any]]:
        """Unacknowledged alert records (sightings, outages) of ``sites``, oldest first."""
        if not sites:
            return []
        query = (RECORD_SELECT.where(and_(*filters(sites, kinds=ALERT_KINDS, unacked=True)))
                 .order_by(events.c.seq.asc()).limit(limit))
        with self.engine.connect() as conn:
            return [record(r) for r in conn.execute(query).mappings()]

    def last_acks(self, sites: Sequence[str], subjects: Sequence[str]) -> dict[str, Any]:
        """subject (case or device id) → the latest acknowledgement ``{by, at}`` of an
        alert about it."""
        if not sites or not subjects:
            return {}
        subject = func.coalesce(events.c.person_id, events.c.device_id)
        query = (select(subject.label("subject"), acks.c.user_name, acks.c.acked_at)
                 .select_from(events.join(acks, acks.c.event_id == events.c.event_id))
                 .where(events.c.site_id.in_(list(sites)), subject.in_(list(subjects)),
                        events.c.kind.in_(ALERT_KINDS))
                 .order_by(acks.c.acked_at))
        with self.engine.connect() as conn:
            return {r.subject: {"by": r.user_name, "at": r.acked_at}
                    for r in conn.execute(query)}

    def acknowledge_group(self, sites: Sequence[str], kind: str, subject: str,
                          upto_seq: int, user: str,
                          event_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Acknowledge every open alert of ``kind`` about ``subject`` (a case or device id)
        in ``sites`` up to ``upto_seq`` — the ones the person saw — or, given
        ``event_ids``, only those of them. Later ones stay open, so a sighting that arrives
        while the button is pressed re-raises the banner.
        Returns ``{event_id, site_id, at}`` of each one acknowledged now."""
        if not sites or kind not in ALERT_KINDS:
            return []
        about = events.c.person_id if kind == "missing_person_sighted" else events.c.device_id
        query = (select(events.c.event_id, events.c.site_id)
                 .select_from(events.outerjoin(acks, acks.c.event_id == events.c.event_id))
                 .where(events.c.site_id.in_(list(sites)), events.c.kind == kind,
                        about == subject, events.c.seq <= upto_seq,
                        acks.c.event_id.is_(None)))
        if event_ids is not None:
            query = query.where(events.c.event_id.in_(list(event_ids)))
        at = self.now()
        acked: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            for row in conn.execute(query).all():
                # another process may acknowledge the same one meanwhile: first one wins
                if conn.execute(self.insert(acks).values(
                        event_id=row.event_id, user_name=user, acked_at=at)
                        .on_conflict_do_nothing(index_elements=["event_id"])).rowcount:
                    acked.append({"event_id": row.event_id, "site_id": row.site_id, "at": at})
        return acked
