"""Decisions per visit: a verdict (confirmed / rejected) and "served", for every sighting
a card or banner groups, including the ones that arrive after the decision.

A *visit* is what :func:`dashboard.alerts.group_visits` makes of sightings: one person at
one site, each sighting less than the visit window after the previous one. Its id is its
first event's id. Only decided visits have a row; the row's ``last_at`` follows the visit
(:meth:`Visits.join`), so the next sighting of a rejected visit is still rejected, on the
desk, in History and in the CSV (each event also gets the verdict as its own feedback row:
the rejection counts per camera stay per event).

A *mark* (what the API and Socket.IO send) is ``{visit_id, site_id, person_id, verdict,
served}``: ``verdict`` is ``{verdict, by, at}`` or None, ``served`` ``{by, at}`` or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, RowMapping

from dashboard.store.engine import Repository
from dashboard.store.schema import feedback, visits
from oneeye.types import format_time, parse_time


def mark(row: RowMapping) -> dict[str, Any]:
    """A ``visits`` row as a mark (see the module docstring)."""
    verdict = ({"verdict": row["verdict"], "by": row["verdict_by"], "at": row["verdict_at"]}
               if row["verdict"] else None)
    served = {"by": row["served_by"], "at": row["served_at"]} if row["served_by"] else None
    return {"visit_id": row["visit_id"], "site_id": row["site_id"],
            "person_id": row["person_id"], "verdict": verdict, "served": served}


class Visits(Repository):
    def get(self, visit_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(visits).where(visits.c.visit_id == visit_id)
                               ).mappings().first()
        return mark(row) if row else None

    def decide(self, visit: Mapping[str, Any], verdict: str | None,
               user: str) -> dict[str, Any]:
        """Give ``verdict`` (``confirmed``/``rejected``; None undoes it) to ``visit`` (a
        :func:`~dashboard.alerts.group_visits` visit: ``visit_id``, ``site_id``,
        ``person_id``, ``kind``, ``first_at``, ``last_at``, ``event_ids``) and to each of
        its events; return the mark."""
        at = self.now()
        with self.engine.begin() as conn:
            self._upsert(conn, visit, {"verdict": verdict, "verdict_by": user if verdict else None,
                                       "verdict_at": at if verdict else None})
            ids = list(visit["event_ids"])
            conn.execute(feedback.delete().where(feedback.c.event_id.in_(ids)))
            if verdict:
                conn.execute(feedback.insert(), [
                    {"event_id": i, "verdict": verdict, "user_name": user, "given_at": at}
                    for i in ids])
        return self._get_one(visit["visit_id"])

    def serve(self, visit: Mapping[str, Any], user: str) -> dict[str, Any]:
        """Mark ``visit`` served by ``user`` (it leaves the desk for History); the first
        "served" counts. Returns the mark."""
        with self.engine.begin() as conn:
            row = conn.execute(select(visits.c.served_by)
                               .where(visits.c.visit_id == visit["visit_id"])).first()
            if row is None or row.served_by is None:
                self._upsert(conn, visit, {"served_by": user, "served_at": self.now()})
        return self._get_one(visit["visit_id"])

    def join(self, record: Mapping[str, Any], window_s: float) -> dict[str, Any] | None:
        """A new sighting ``record`` (with ``event.match``) joins a decided visit of its
        person at its site that it continues (its last sighting less than ``window_s``
        before): the visit's ``last_at`` moves and the event gets the visit's verdict.
        Returns that visit's mark, or None (no decided visit to join)."""
        person = (record["event"].get("match") or {}).get("person_id")
        if not person:
            return None
        at = str(record["observed_at"])
        earliest = format_time(parse_time(at) - timedelta(seconds=window_s))
        query = (select(visits).where(and_(
            visits.c.site_id == record["site_id"], visits.c.person_id == str(person),
            visits.c.kind == record["kind"], visits.c.last_at > earliest,
            visits.c.first_at <= at)).order_by(visits.c.last_at.desc()).limit(1))
        with self.engine.begin() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                return None
            if at > row["last_at"]:
                conn.execute(visits.update().where(visits.c.visit_id == row["visit_id"])
                             .values(last_at=at))
            if row["verdict"]:
                conn.execute(self.insert(feedback).values(
                    event_id=record["event_id"], verdict=row["verdict"],
                    user_name=row["verdict_by"], given_at=row["verdict_at"],
                ).on_conflict_do_nothing(index_elements=["event_id"]))
        return mark(row)

    def overlapping(self, sites: Sequence[str], since: str) -> list[dict[str, Any]]:
        """Marks of ``sites`` whose visit went on at or after ``since`` (UTC), each with
        its ``first_at``/``last_at`` (to match them to visits grouped again)."""
        if not sites:
            return []
        query = select(visits).where(and_(visits.c.site_id.in_(list(sites)),
                                          visits.c.last_at >= since))
        with self.engine.connect() as conn:
            return [{**mark(r), "first_at": r["first_at"], "last_at": r["last_at"]}
                    for r in conn.execute(query).mappings()]

    def purge(self, before: str) -> int:
        """Delete visits that ended before ``before`` (retention, with their events)."""
        with self.engine.begin() as conn:
            return int(conn.execute(visits.delete().where(visits.c.last_at < before)).rowcount)

    def _upsert(self, conn: Connection, visit: Mapping[str, Any], values: dict[str, Any]) -> None:
        statement = self.insert(visits).values(
            visit_id=visit["visit_id"], site_id=visit["site_id"],
            person_id=str(visit["person_id"]), kind=visit["kind"],
            first_at=visit["first_at"], last_at=visit["last_at"], **values)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["visit_id"], set_={**values, "last_at": visit["last_at"]}))

    def _get_one(self, visit_id: str) -> dict[str, Any]:
        found = self.get(visit_id)
        assert found is not None  # written in the transaction just committed
        return found
