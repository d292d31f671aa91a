"""Users, their logins, and failed-login counters.

A user is ``{name, sites, role, agency}`` (plus ``password_hash`` from :meth:`Users.get`,
``created_at`` from :meth:`Users.all`). The session cookie names only a *login*: logout
ends the row, so a copied cookie stops working too, and a removed user's logins end with
them. Failed logins are counted per throttle key for ``dashboard.throttle``, in the
database every dashboard process shares.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping

from dashboard.store.engine import Repository
from dashboard.store.schema import login_failures, logins, users
from oneeye.types import ROLES


def _user(row: RowMapping) -> dict[str, Any]:
    return {**row, "sites": json.loads(row["sites"]), "role": row.get("role") or "teller"}


class Users(Repository):
    def put(self, name: str, password_hash: str, sites: Sequence[str],
            role: str = "teller", agency: str | None = None) -> None:
        """Create a user or replace their password, sites, role and agency. Raises
        ValueError for an unknown role or an agency officer without an agency."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "agency_officer" and not agency:
            raise ValueError("an agency officer needs an agency")
        statement = self.insert(users).values(
            name=name, password_hash=password_hash, sites=json.dumps(list(sites)),
            created_at=self.now(), role=role, agency=agency)
        new = statement.excluded
        statement = statement.on_conflict_do_update(index_elements=["name"], set_={
            "password_hash": new.password_hash, "sites": new.sites, "role": new.role,
            "agency": new.agency})
        with self.engine.begin() as conn:
            conn.execute(statement)

    def get(self, name: str) -> dict[str, Any] | None:
        """``{name, password_hash, sites, role, agency}``, or None."""
        query = (select(users.c.name, users.c.password_hash, users.c.sites, users.c.role,
                        users.c.agency).where(users.c.name == name))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _user(row) if row else None

    def all(self) -> list[dict[str, Any]]:
        """Every user without the password hash, by name."""
        query = select(users.c.name, users.c.sites, users.c.role, users.c.agency,
                       users.c.created_at).order_by(users.c.name)
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(query).mappings()]

    def remove(self, name: str) -> bool:
        """Delete a user (their open logins end with them); False if there was none."""
        with self.engine.begin() as conn:
            return int(conn.execute(users.delete().where(users.c.name == name)).rowcount) > 0


class Logins(Repository):
    def start(self, user: str) -> str:
        """A new open login of ``user``; returns its id (unguessable, for the cookie)."""
        login_id = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            conn.execute(logins.insert().values(login_id=login_id, user_name=user,
                                                started_at=self.now()))
        return login_id

    def user(self, login_id: str) -> dict[str, Any] | None:
        """``{name, sites, role, agency}`` of the user of a login that has not ended and
        whose user still exists, else None."""
        query = (select(users.c.name, users.c.sites, users.c.role, users.c.agency)
                 .select_from(logins.join(users, users.c.name == logins.c.user_name))
                 .where(logins.c.login_id == login_id, logins.c.ended_at.is_(None)))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _user(row) if row else None

    def end(self, login_id: str) -> None:
        """End a login (ending it again changes nothing)."""
        with self.engine.begin() as conn:
            conn.execute(logins.update().values(ended_at=self.now())
                         .where(logins.c.login_id == login_id, logins.c.ended_at.is_(None)))

    def purge(self, ended_before: str) -> int:
        """Forget logins that ended before ``ended_before``; return how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(logins.delete()
                                    .where(logins.c.ended_at < ended_before)).rowcount)


class LoginFailures(Repository):
    """``dashboard.throttle.Counters`` in the database: a failure log per key, times in
    seconds since the epoch."""

    def add(self, key: str, at: float, window_s: float) -> None:
        """Record a failure of ``key`` at ``at``; drop this key's ones out of the window."""
        with self.engine.begin() as conn:
            conn.execute(login_failures.delete().where(
                login_failures.c.throttle_key == key,
                login_failures.c.failed_at < at - window_s))
            conn.execute(login_failures.insert().values(throttle_key=key, failed_at=at))

    def count(self, key: str, since: float) -> int:
        query = (select(func.count()).select_from(login_failures)
                 .where(login_failures.c.throttle_key == key,
                        login_failures.c.failed_at >= since))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(login_failures.delete().where(login_failures.c.throttle_key == key))

    def purge(self, before: float) -> int:
        """Forget failures older than ``before`` (epoch s) of every key; return how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(login_failures.delete()
                                    .where(login_failures.c.failed_at < before)).rowcount)
