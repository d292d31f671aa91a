"""An agency's side of its cases: every sighting of a case at every site, and the case's
status history (pending → open → closed, who and when).

An agency's scope is its cases across sites (``events.agency``, the sighting's
``case.agency``); a bank user's scope stays their sites (:mod:`dashboard.store.events`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from dashboard.store.engine import Repository
from dashboard.store.events import RECORD_SELECT, record
from dashboard.store.schema import case_history, events

SIGHTED = "missing_person_sighted"


class Cases(Repository):
    def sightings(self, agency: str, case_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
        """Every stored sighting of ``case_id`` by ``agency``, at any site, newest first."""
        query = (RECORD_SELECT.where(events.c.kind == SIGHTED, events.c.agency == agency,
                                     events.c.person_id == case_id)
                 .order_by(events.c.seq.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [record(r) for r in conn.execute(query).mappings()]

    def summary(self, agency: str) -> dict[str, dict[str, Any]]:
        """case id → ``{count, last_at, sites}`` of ``agency``'s stored sightings."""
        query = (select(events.c.person_id, events.c.site_id, func.count().label("n"),
                        func.max(events.c.observed_at).label("last_at"))
                 .where(events.c.kind == SIGHTED, events.c.agency == agency)
                 .group_by(events.c.person_id, events.c.site_id))
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                case = out.setdefault(str(row.person_id), {"count": 0, "last_at": "",
                                                           "sites": []})
                case["count"] += int(row.n)
                case["last_at"] = max(case["last_at"], str(row.last_at))
                case["sites"].append(row.site_id)
        return out

    def message_ids(self, agency: str, *, limit: int = 5000) -> set[str]:
        """The message ids (SNS/SES) of every "who was told" entry of ``agency``'s newest
        ``limit`` sightings: what its officers may read in the alert outbox."""
        query = (select(events.c.body).where(events.c.kind == SIGHTED,
                                             events.c.agency == agency)
                 .order_by(events.c.seq.desc()).limit(limit))
        ids: set[str] = set()
        with self.engine.connect() as conn:
            for (body,) in conn.execute(query):
                for told in (json.loads(body).get("case") or {}).get("told") or []:
                    if isinstance(told, dict) and told.get("message_id"):
                        ids.add(str(told["message_id"]))
        return ids

    def sites_of(self, case_id: str) -> list[str]:
        """The sites where ``case_id`` was sighted (whose desks show its banner)."""
        query = (select(events.c.site_id).distinct()
                 .where(events.c.kind == SIGHTED, events.c.person_id == case_id))
        with self.engine.connect() as conn:
            return sorted(str(r.site_id) for r in conn.execute(query))

    def record_status(self, case_id: str, agency: str, status: str,
                      by: str) -> dict[str, Any]:
        """Append a status change ``{case_id, status, by, at}`` (and return it)."""
        at = self.now()
        with self.engine.begin() as conn:
            conn.execute(case_history.insert().values(case_id=case_id, agency=agency,
                                                      status=status, by_name=by, at=at))
        return {"case_id": case_id, "status": status, "by": by, "at": at}

    def history(self, case_id: str, agency: str) -> list[dict[str, Any]]:
        """The status changes the dashboard recorded for ``agency``'s ``case_id``, oldest
        first."""
        query = (select(case_history).where(case_history.c.case_id == case_id,
                                            case_history.c.agency == agency)
                 .order_by(case_history.c.seq))
        with self.engine.connect() as conn:
            return [{"status": r.status, "by": r.by_name, "at": r.at}
                    for r in conn.execute(query)]

    def closed(self, case_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """case id → ``{by, at}`` for those of ``case_ids`` whose latest change is closed."""
        if not case_ids:
            return {}
        latest = (select(case_history.c.case_id, func.max(case_history.c.seq).label("seq"))
                  .where(case_history.c.case_id.in_(list(case_ids)))
                  .group_by(case_history.c.case_id).subquery())
        query = (select(case_history).join(latest, latest.c.seq == case_history.c.seq)
                 .where(case_history.c.status == "closed"))
        with self.engine.connect() as conn:
            return {r.case_id: {"by": r.by_name, "at": r.at} for r in conn.execute(query)}
