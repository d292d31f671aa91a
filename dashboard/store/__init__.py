"""The dashboard's database: SQLAlchemy Core on SQLite (default) or PostgreSQL, migrated
by Alembic at every start.

:func:`open_store` gives a :class:`Store`: one engine and one small repository per
concern, each in its own module —

- ``events``         :class:`~dashboard.store.events.Events` (add once, find, count, purge)
- ``alerts``         :class:`~dashboard.store.alerts.Alerts` (acknowledgements, open alerts)
- ``verdicts``       :class:`~dashboard.store.verdicts.Verdicts` (confirmed / rejected)
- ``visits``         :class:`~dashboard.store.visits.Visits` (verdict and "served" per visit)
- ``devices``        :class:`~dashboard.store.devices.Devices` (health as state)
- ``users``, ``logins``, ``login_failures`` (:mod:`dashboard.store.users`)
- ``audit``          :class:`~dashboard.store.audit.Audit` (who did what, when)
- ``cases``          :class:`~dashboard.store.cases.Cases` (an agency's
  sightings, case status history)

Tables are in :mod:`dashboard.store.schema`; how a database reaches them is
``dashboard/migrations`` (:func:`upgrade`). The engine's pool replaces the one locked
connection of the hand-written store: the dashboard writes a few rows a second, and every
repository method is one short transaction.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dashboard.store.alerts import Alerts
from dashboard.store.audit import Audit
from dashboard.store.cases import Cases
from dashboard.store.devices import Devices
from dashboard.store.engine import make_engine, normalize_url
from dashboard.store.events import Events
from dashboard.store.users import LoginFailures, Logins, Users
from dashboard.store.verdicts import Verdicts
from dashboard.store.visits import Visits
from oneeye.types import Clock, format_time

__all__ = ["Store", "current_revision", "head_revision", "make_engine", "normalize_url",
           "open_store", "upgrade"]

#: ``dashboard/migrations``: env.py and versions/, shipped inside the package.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: Login failures older than this count in no window (``login_window_s`` ≤ 1 day).
FAILURES_KEPT_S = 86_400


def alembic_config(connection: Any = None) -> Config:
    """Alembic's configuration without an ini file; ``connection`` is lent to env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (in one transaction where the backend allows).

    A database made by the hand-written store (no ``alembic_version``) is adopted by
    revision 0001 with its rows; a new one is created.
    """
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision in ``dashboard/migrations/versions``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return head


@dataclass(frozen=True)
class Store:
    """The repositories of one database; build it with :func:`open_store`."""

    engine: Engine
    clock: Clock
    events: Events
    alerts: Alerts
    verdicts: Verdicts
    visits: Visits
    devices: Devices
    users: Users
    logins: Logins
    login_failures: LoginFailures
    audit: Audit
    cases: Cases
    #: Set by :meth:`close`: the app's background loops (retention, socket checks) stop.
    closed: threading.Event = field(default_factory=threading.Event, compare=False)

    def now(self) -> str:
        """The store's clock as a timestamp in the one format (UTC ``…Z``)."""
        return self.events.now()

    def purge(self, older_than_days: float, *, ids_older_than_days: float | None = None) -> int:
        """Retention: events (with their acknowledgements and verdicts) received before
        ``older_than_days``, visits and logins ended before then, and login failures
        older than a day. Returns how many events went (see :meth:`Events.purge`)."""
        removed = self.events.purge(older_than_days, ids_older_than_days=ids_older_than_days)
        cutoff = datetime.fromtimestamp(self.clock(), UTC) - timedelta(days=older_than_days)
        self.logins.purge(format_time(cutoff))
        self.visits.purge(format_time(cutoff))
        self.login_failures.purge(self.clock() - FAILURES_KEPT_S)
        return removed

    def sites(self) -> list[dict[str, Any]]:
        """``{site_id, devices, users}`` of every site a user or a device names, by id."""
        out: dict[str, dict[str, Any]] = {}
        for site, count in self.devices.count_by_site().items():
            out[site] = {"site_id": site, "devices": count, "users": 0}
        for user in self.users.all():
            for site in user["sites"]:
                out.setdefault(site, {"site_id": site, "devices": 0, "users": 0})["users"] += 1
        return sorted(out.values(), key=lambda s: str(s["site_id"]))

    def ping(self) -> bool:
        """True when the database answers (``/healthz``)."""
        with self.engine.connect() as connection:
            return connection.execute(select(1)).scalar() == 1

    def close(self) -> None:
        """Close the pool's connections (the store is not used afterwards) and tell the
        background loops that use it to stop."""
        self.closed.set()
        self.engine.dispose()


def open_store(url: str, *, clock: Clock = time.time, migrate: bool = True) -> Store:
    """The store of ``url`` (``sqlite:///path`` or ``postgresql://…``), migrated to the
    newest revision unless ``migrate`` is False. Raises ValueError for another URL."""
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    return Store(engine=engine, clock=clock, events=Events(engine, clock),
                 alerts=Alerts(engine, clock), verdicts=Verdicts(engine, clock),
                 visits=Visits(engine, clock),
                 devices=Devices(engine, clock), users=Users(engine, clock),
                 logins=Logins(engine, clock), login_failures=LoginFailures(engine, clock),
                 audit=Audit(engine, clock), cases=Cases(engine, clock))
