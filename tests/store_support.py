"""The dashboard database in tests: PostgreSQL on this machine's loopback, and the schema
of the hand-written store (before SQLAlchemy and Alembic) to build databases "made by
yesterday's code" from.

PostgreSQL: 127.0.0.1:5432, user ``postgres`` with trust auth, database ``test``. A run
creates its own database (``oneeye_test_<hex>``) and drops it at the end; each test gets
a fresh schema inside it through the URL's ``search_path``. Where no server listens, the
PostgreSQL variants skip with :data:`PG_ABSENT` as the reason.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

#: The server's maintenance connection (libpq form, for psycopg).
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_ABSENT = ("PostgreSQL is not running on 127.0.0.1:5432 (user postgres, database test, "
             "trust auth): the PostgreSQL variant of this test is skipped")


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def new_pg_database() -> Iterator[str]:
    """A new database for this run; yields its libpq URL, drops it afterwards."""
    name = "oneeye_test_" + secrets.token_hex(5)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def pg_schema(database: str) -> Iterator[str]:
    """A fresh schema in ``database``; yields a URL whose ``search_path`` is that schema
    (and whose ``application_name`` is its name, to find its sessions), then drops it."""
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield f"{database}?options=-csearch_path%3D{schema}&application_name={schema}"
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# --- the hand-written store's schema (dashboard/store.py before SQLAlchemy), verbatim ------

LEGACY_COMMON = [
    """CREATE TABLE IF NOT EXISTS acks (event_id TEXT PRIMARY KEY, user_name TEXT NOT NULL,
       acked_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, site_id TEXT NOT NULL,
       last_seen TEXT NOT NULL, fps REAL, camera_state TEXT, state TEXT NOT NULL,
       health TEXT)""",
    """CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
       sites TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS logins (login_id TEXT PRIMARY KEY, user_name TEXT NOT NULL,
       started_at TEXT NOT NULL, ended_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS login_failures (throttle_key TEXT NOT NULL,
       failed_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (throttle_key, failed_at)",
    """CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY,
       received_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS seen_events_received ON seen_events (received_at)",
    """CREATE TABLE IF NOT EXISTS feedback (event_id TEXT PRIMARY KEY, verdict TEXT NOT NULL,
       user_name TEXT NOT NULL, given_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_site_seq ON events (site_id, seq)",
    "CREATE INDEX IF NOT EXISTS events_received ON events (received_at)",
    "CREATE INDEX IF NOT EXISTS audit_at ON audit (at)",
]
LEGACY_EVENTS = """CREATE TABLE IF NOT EXISTS events (seq {serial}, event_id TEXT NOT NULL UNIQUE,
       site_id TEXT NOT NULL, kind TEXT NOT NULL, observed_at TEXT NOT NULL,
       received_at TEXT NOT NULL, person_id TEXT, person_name TEXT, body TEXT NOT NULL)"""
LEGACY_AUDIT = """CREATE TABLE IF NOT EXISTS audit (seq {serial}, at TEXT NOT NULL,
       user_name TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
       site_id TEXT, detail TEXT NOT NULL)"""
#: The columns that store added at start when absent (its ``_ADDED``).
LEGACY_ADDED = [("users", "role", "TEXT NOT NULL DEFAULT 'teller'"), ("users", "agency", "TEXT"),
                ("events", "device_id", "TEXT")]
LEGACY_SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
                 "postgresql": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}

#: Rows "yesterday's" dashboard held: two events (one acknowledged, one with a verdict),
#: a user with a role, a device, an open login, an audit row and a login failure.
LEGACY_ROWS = [
    ("INSERT INTO events (event_id, site_id, kind, observed_at, received_at, person_id,"
     " person_name, device_id, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
     ("0190a1b2-0000-7000-8000-000000000001", "branch-1", "missing_person_sighted",
      "2026-01-30T10:00:00.000Z", "2026-01-30T10:00:01.000Z", "MP-7", "Tom Thumb", "cam-1",
      '{"event_id": "0190a1b2-0000-7000-8000-000000000001", "kind": '
      '"missing_person_sighted", "site_id": "branch-1", "device_id": "cam-1", '
      '"match": {"person_id": "MP-7", "camera_id": "cam-1", "watchlist": "missing"}}')),
    ("INSERT INTO events (event_id, site_id, kind, observed_at, received_at, person_id,"
     " person_name, device_id, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
     ("0190a1b2-0000-7000-8000-000000000002", "branch-1", "customer_arrived",
      "2026-01-30T10:05:00.000Z", "2026-01-30T10:05:01.000Z", "C-1", "Ada", "cam-1",
      '{"event_id": "0190a1b2-0000-7000-8000-000000000002", "kind": "customer_arrived", '
      '"site_id": "branch-1", "match": {"person_id": "C-1", "camera_id": "cam-1", '
      '"watchlist": "customers"}}')),
    ("INSERT INTO seen_events (event_id, received_at) VALUES (?, ?)",
     ("0190a1b2-0000-7000-8000-000000000001", "2026-01-30T10:00:01.000Z")),
    ("INSERT INTO seen_events (event_id, received_at) VALUES (?, ?)",
     ("0190a1b2-0000-7000-8000-000000000002", "2026-01-30T10:05:01.000Z")),
    ("INSERT INTO acks (event_id, user_name, acked_at) VALUES (?, ?, ?)",
     ("0190a1b2-0000-7000-8000-000000000001", "alice", "2026-01-30T10:01:00.000Z")),
    ("INSERT INTO feedback (event_id, verdict, user_name, given_at) VALUES (?, ?, ?, ?)",
     ("0190a1b2-0000-7000-8000-000000000002", "rejected", "alice", "2026-01-30T10:06:00.000Z")),
    ("INSERT INTO users (name, password_hash, sites, created_at, role, agency)"
     " VALUES (?, ?, ?, ?, ?, ?)",
     ("ada", "argon2-hash", '["branch-1"]', "2026-01-01T00:00:00.000Z", "branch_admin", None)),
    ("INSERT INTO devices (device_id, site_id, last_seen, fps, camera_state, state, health)"
     " VALUES (?, ?, ?, ?, ?, ?, ?)",
     ("cam-1", "branch-1", "2026-01-30T10:05:00.000Z", 14.5, "ok", "online", None)),
    ("INSERT INTO logins (login_id, user_name, started_at) VALUES (?, ?, ?)",
     ("login-1", "ada", "2026-01-30T09:00:00.000Z")),
    ("INSERT INTO audit (at, user_name, action, target, site_id, detail)"
     " VALUES (?, ?, ?, ?, ?, ?)",
     ("2026-01-30T10:01:00.000Z", "alice", "acknowledged",
      "0190a1b2-0000-7000-8000-000000000001", "branch-1", '{"kind": "missing_person_sighted"}')),
    ("INSERT INTO login_failures (throttle_key, failed_at) VALUES (?, ?)",
     ("user:mallory", 1769767200.5)),
]


def make_legacy_database(url: str, *, added: bool = True) -> None:
    """Create the hand-written store's tables at ``url`` (``sqlite:///path`` or a libpq
    ``postgresql://`` URL) as its start did, and fill them with :data:`LEGACY_ROWS`.

    ``added=False`` is a database of its first release, before its ``_ADDED`` columns
    (``users.role``, ``users.agency``, ``events.device_id``): rows then go in without them.
    """
    backend = "sqlite" if url.startswith("sqlite:///") else "postgresql"
    statements = [LEGACY_EVENTS.format(serial=LEGACY_SERIAL[backend]),
                  LEGACY_AUDIT.format(serial=LEGACY_SERIAL[backend]), *LEGACY_COMMON]
    if added:
        statements += [f"ALTER TABLE {table} ADD COLUMN {column} {kind}"
                       for table, column, kind in LEGACY_ADDED]
    rows = LEGACY_ROWS if added else [_without_added(sql_text, args)
                                      for sql_text, args in LEGACY_ROWS]
    if backend == "sqlite":
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, isolation_level=None) as conn:
            for statement in statements:
                conn.execute(statement)
            for sql_text, args in rows:
                conn.execute(sql_text, args)
        conn.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        for sql_text, args in rows:
            conn.execute(sql_text.replace("?", "%s"), args)


def _without_added(sql_text: str, args: tuple[object, ...]) -> tuple[str, tuple[object, ...]]:
    """An INSERT of :data:`LEGACY_ROWS` without the ``_ADDED`` columns (first release)."""
    head, _, _ = sql_text.partition(" VALUES")
    table = head.split()[2]
    columns = [c.strip() for c in head.split("(", 1)[1].rstrip(")").split(",")]
    dropped = {column for t, column, _ in LEGACY_ADDED if t == table}
    kept = [(c, a) for c, a in zip(columns, args, strict=True) if c not in dropped]
    return (f"INSERT INTO {table} ({', '.join(c for c, _ in kept)}) VALUES "
            f"({', '.join('?' * len(kept))})", tuple(a for _, a in kept))
