"""Users, their logins, and failed-login counters.

A user is ``{user_id, name, sites, role, agency}`` (plus ``password_hash`` from
:meth:`Users.get`, ``created_at`` from :meth:`Users.all`). ``user_id`` is immutable: a new
account given an old name is another user. Creating, editing (role, sites, agency),
resetting a password and removing are separate actions; each change but creation gives
the user a new credential *stamp* and ends their open logins, and returns those login ids
so the caller can close their sockets (``dashboard.live.Live.end_logins``).

The session cookie names only a *login*, which records the user id and the stamp it was
made under: logout ends the row, so a copied cookie stops working too, and a login whose
stamp is no longer its user's is refused. Failed logins are counted per throttle key for
``dashboard.throttle``, in the database every dashboard process shares.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from dashboard.store.engine import Repository
from dashboard.store.schema import login_failures, logins, users
from oneeye.errors import NameTaken
from oneeye.ids import new_id
from oneeye.types import AGENCY_ROLES, ROLES


def _user(row: RowMapping) -> dict[str, Any]:
    return {**row, "sites": json.loads(row["sites"]), "role": row.get("role") or "teller"}


def _check(role: str, sites: Sequence[str], agency: str | None) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role in AGENCY_ROLES and not agency:
        raise ValueError(f"an {role.replace('_', ' ')} needs an agency")
    if role in AGENCY_ROLES and sites:
        raise ValueError("agency users have no sites (cases belong to their agency)")
    if role not in AGENCY_ROLES and agency:
        raise ValueError("only agency users have an agency")


_PUBLIC = (users.c.user_id, users.c.name, users.c.sites, users.c.role, users.c.agency)


class Users(Repository):
    def create(self, name: str, password_hash: str, sites: Sequence[str],
               role: str = "teller", agency: str | None = None) -> str:
        """A new user; returns their ``user_id``. Raises :class:`NameTaken` when ``name``
        exists (never replaces it) and ValueError for an unknown role, an agency user
        without an agency or with sites, or a bank user with an agency."""
        _check(role, sites, agency)
        user_id = new_id()
        try:
            with self.engine.begin() as conn:
                conn.execute(users.insert().values(
                    user_id=user_id, name=name, password_hash=password_hash,
                    sites=json.dumps(list(sites)), created_at=self.now(), role=role,
                    agency=agency, stamp=secrets.token_urlsafe(16)))
        except IntegrityError as exc:
            raise NameTaken(f"a user named {name} already exists") from exc
        return user_id

    def edit(self, user_id: str, *, sites: Sequence[str], role: str,
             agency: str | None = None) -> list[str] | None:
        """Set a user's role, sites and agency. When any of them changes, the user gets
        a new stamp and their open logins end; returns the ids of the logins ended
        (``[]`` when nothing changed), None when there is no such user."""
        _check(role, sites, agency)
        with self.engine.begin() as conn:
            row = conn.execute(select(*_PUBLIC).where(users.c.user_id == user_id)
                               ).mappings().first()
            if row is None:
                return None
            before = _user(row)
            if (before["role"], before["sites"], before["agency"]) == (role, list(sites),
                                                                       agency):
                return []
            conn.execute(users.update().where(users.c.user_id == user_id).values(
                sites=json.dumps(list(sites)), role=role, agency=agency,
                stamp=secrets.token_urlsafe(16)))
            return self._end_logins(conn, user_id)

    def set_password(self, user_id: str, password_hash: str) -> list[str] | None:
        """A new password: new stamp, open logins end (their ids returned); None when
        there is no such user."""
        with self.engine.begin() as conn:
            changed = conn.execute(users.update().where(users.c.user_id == user_id).values(
                password_hash=password_hash, stamp=secrets.token_urlsafe(16))).rowcount
            return self._end_logins(conn, user_id) if changed else None

    def get(self, name: str) -> dict[str, Any] | None:
        """``{user_id, name, password_hash, sites, role, agency, stamp}`` by name, or None."""
        query = select(*_PUBLIC, users.c.password_hash, users.c.stamp).where(
            users.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _user(row) if row else None

    def by_id(self, user_id: str) -> dict[str, Any] | None:
        """``{user_id, name, sites, role, agency}``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*_PUBLIC).where(users.c.user_id == user_id)
                               ).mappings().first()
        return _user(row) if row else None

    def all(self) -> list[dict[str, Any]]:
        """Every user without the password hash, by name (scope it with
        ``dashboard.tenancy.visible_users`` before showing it to anyone)."""
        query = select(*_PUBLIC, users.c.created_at).order_by(users.c.name)
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(query).mappings()]

    def remove(self, user_id: str) -> list[str] | None:
        """Delete a user; their open logins end (their ids returned). None when there was
        no such user."""
        with self.engine.begin() as conn:
            if not conn.execute(users.delete().where(users.c.user_id == user_id)).rowcount:
                return None
            return self._end_logins(conn, user_id)

    def _end_logins(self, conn: Connection, user_id: str) -> list[str]:
        open_ = (logins.c.user_id == user_id) & logins.c.ended_at.is_(None)
        ended = [str(r) for r in conn.execute(select(logins.c.login_id).where(open_)).scalars()]
        conn.execute(logins.update().values(ended_at=self.now()).where(open_))
        return ended


class Logins(Repository):
    def start(self, user_id: str, stamp: str) -> str:
        """A new open login of the user ``user_id`` under their current ``stamp``; returns
        its id (unguessable, for the cookie)."""
        login_id = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            conn.execute(logins.insert().values(login_id=login_id, user_id=user_id,
                                                stamp=stamp, started_at=self.now()))
        return login_id

    def user(self, login_id: str) -> dict[str, Any] | None:
        """``{user_id, name, sites, role, agency}`` of the user of a login that has not
        ended, whose user still exists and whose stamp is still that user's, else None."""
        query = (select(*_PUBLIC)
                 .select_from(logins.join(users, users.c.user_id == logins.c.user_id))
                 .where(logins.c.login_id == login_id, logins.c.ended_at.is_(None),
                        logins.c.stamp == users.c.stamp))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _user(row) if row else None

    def valid(self, login_ids: Sequence[str]) -> set[str]:
        """Those of ``login_ids`` that :meth:`user` would still accept (one query: the
        socket sweep asks for every socket of a process at once)."""
        if not login_ids:
            return set()
        query = (select(logins.c.login_id)
                 .select_from(logins.join(users, users.c.user_id == logins.c.user_id))
                 .where(logins.c.login_id.in_(list(login_ids)), logins.c.ended_at.is_(None),
                        logins.c.stamp == users.c.stamp))
        with self.engine.connect() as conn:
            return {str(r) for r in conn.execute(query).scalars()}

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
