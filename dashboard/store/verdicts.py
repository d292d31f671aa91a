"""Verdicts on sightings (confirmed / rejected): the latest one per event counts.

Every verdict given is also an audit row (the caller writes it); the rejection counts per
camera and watchlist are the false matches to tune thresholds on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from dashboard.store.engine import Repository
from dashboard.store.schema import events, feedback


class Verdicts(Repository):
    def give(self, event_id: str, verdict: str, user: str) -> dict[str, Any]:
        """Record ``verdict`` on an event, replacing an earlier one; return
        ``{event_id, verdict, by, at}``."""
        at = self.now()
        statement = self.insert(feedback).values(event_id=event_id, verdict=verdict,
                                                 user_name=user, given_at=at)
        statement = statement.on_conflict_do_update(
            index_elements=["event_id"],
            set_={"verdict": statement.excluded.verdict,
                  "user_name": statement.excluded.user_name,
                  "given_at": statement.excluded.given_at})
        with self.engine.begin() as conn:
            conn.execute(statement)
        return {"event_id": event_id, "verdict": verdict, "by": user, "at": at}

    def rejection_counts(self, sites: Sequence[str]) -> list[dict[str, Any]]:
        """``{site_id, camera_id, watchlist, confirmed, rejected}`` per camera and
        watchlist of ``sites``, most rejected first."""
        if not sites:
            return []
        query = (select(events.c.site_id, events.c.body, feedback.c.verdict)
                 .select_from(feedback.join(events, events.c.event_id == feedback.c.event_id))
                 .where(events.c.site_id.in_(list(sites))))
        counts: dict[tuple[str, str, str], dict[str, int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                match = json.loads(row.body).get("match") or {}
                key = (row.site_id, str(match.get("camera_id", "?")),
                       str(match.get("watchlist", "?")))
                bucket = counts.setdefault(key, {"confirmed": 0, "rejected": 0})
                bucket[row.verdict] = bucket.get(row.verdict, 0) + 1
        return [{"site_id": k[0], "camera_id": k[1], "watchlist": k[2], **v}
                for k, v in sorted(counts.items(), key=lambda kv: -kv[1]["rejected"])]
