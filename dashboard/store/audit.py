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
            agency: str | None = None, **detail: Any) -> None:
        """Append one row; ``agency`` marks an agency's action (closing a case, managing
        its officers), null for the bank's; ``detail`` is stored as JSON (non-JSON values
        as their str)."""
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(
                at=self.now(), user_name=user, action=action, target=target, site_id=site_id,
                agency=agency, detail=json.dumps(detail, default=str)))

    def rows(self, *, sites: Sequence[str] | None = None, agency: str | None = None,
             user: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Newest-first rows ``{seq, at, user_name, action, target, site_id, agency,
        detail}``: with ``agency``, that agency's rows only; with ``sites``, the bank's
        rows of those sites and the bank's rows without a site (never an agency's);
        and/or of ``user``. ``dashboard.tenancy.audit_scope`` says which a user gets."""
        where: list[ColumnElement[bool]] = []
        if agency is not None:
            where.append(audit.c.agency == agency)
        if sites is not None:
            where.append(audit.c.agency.is_(None))
            where.append(or_(audit.c.site_id.is_(None), audit.c.site_id.in_(list(sites))))
        if user is not None:
            where.append(audit.c.user_name == user)
        query = select(audit).where(*where).order_by(audit.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [{**r, "detail": json.loads(r["detail"])}
                    for r in conn.execute(query).mappings()]
