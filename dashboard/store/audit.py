"""The audit trail: who did what, when (acknowledgements, verdicts, closed cases, photo
changes, users). Rows are appended, never updated, and never purged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from dashboard.store.engine import Repository
from dashboard.store.schema import audit


class Audit(Repository):
    def add(self, user: str, action: str, target: str, *, site_id: str | None = None,
            **detail: Any) -> None:
        """Append one row; ``detail`` is stored as JSON (non-JSON values as their str)."""
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(
                at=self.now(), user_name=user, action=action, target=target, site_id=site_id,
                detail=json.dumps(detail, default=str)))

    def rows(self, *, sites: Sequence[str] | None = None, user: str | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
        """Newest-first rows ``{seq, at, user_name, action, target, site_id, detail}`` of
        ``sites`` (rows without a site included) and/or of ``user``."""
        where: list[ColumnElement[bool]] = []
        if sites is not None:
            where.append(or_(audit.c.site_id.is_(None), audit.c.site_id.in_(list(sites))))
        if user is not None:
            where.append(audit.c.user_name == user)
        query = select(audit).where(*where).order_by(audit.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [{**r, "detail": json.loads(r["detail"])}
                    for r in conn.execute(query).mappings()]
