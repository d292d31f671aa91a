"""The database connection: an SQLAlchemy :class:`~sqlalchemy.engine.Engine` for a
``database_url``, and the base every repository shares (engine, clock, upserts).

URLs: ``sqlite:///path`` (the default, under ``var_dir``) or PostgreSQL
(``postgresql://…`` and ``postgres://…`` mean psycopg 3, as ``postgresql+psycopg://…``
does). SQLite files are created owner-only (0600: names, contacts and logins) and run in
WAL mode so readers never wait for the writer. PostgreSQL connections are checked before
each use (``pool_pre_ping``): one the server dropped (restart, failover) is replaced
instead of failing the request, which the hand-written store did with its own reconnect.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from oneeye.types import Clock, format_time

__all__ = ["Repository", "make_engine", "normalize_url"]


def normalize_url(url: str) -> URL:
    """``url`` as an SQLAlchemy URL with its driver named: PostgreSQL through psycopg 3.

    Raises ValueError for anything but SQLite and PostgreSQL (the two the dashboard is
    tested on).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"unsupported database URL {url!r} (sqlite:/// or "
                         "postgresql://)") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed
    raise ValueError(f"unsupported database URL {url!r} (sqlite:/// or postgresql://)")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (see the module docstring); the SQLite file's folder is made."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        # preserve_rowcount: the stores read an upsert's rowcount ("first one wins");
        # SQLAlchemy 2.1 with psycopg reports -1 for an INSERT without it
        return create_engine(parsed, pool_pre_ping=True,
                             execution_options={"preserve_rowcount": True})
    path = parsed.database or ":memory:"
    if path == ":memory:":
        # one connection shared by every thread: each new one would be an empty database
        engine = create_engine(parsed, poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # owner-only before SQLite creates it (its -wal and -shm files take its mode)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        engine = create_engine(parsed)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


class Repository:
    """One concern's queries over a shared ``engine``; ``clock`` (epoch seconds) stamps
    rows and ages retention (tests move it)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def now(self) -> str:
        """The clock as a timestamp in the one format (UTC ``…Z``)."""
        return format_time(datetime.fromtimestamp(self.clock(), UTC))

    def insert(self, table: Table) -> Any:
        """``INSERT`` with ``ON CONFLICT`` (``on_conflict_do_nothing``/``_do_update``) in
        this engine's dialect: the statement is the same on SQLite and PostgreSQL, the
        construct is not shared."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
