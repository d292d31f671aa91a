"""The dashboard's event store: SQLite by default, PostgreSQL by URL.

Events are keyed by ``event_id`` (SNS retries and edge replays arrive twice;
the second copy is ignored). Each stored event also gets a ``seq`` in arrival
order: a reconnecting browser asks for everything after the last event it saw,
and an event that arrives late with an older ``event_id`` must still reach it,
so catch-up follows arrival order, not id order.

One connection guarded by a lock: the dashboard writes a few events a second,
far below what either database does on one connection.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from oneeye.events import DeskEvent, format_time
from oneeye.types import Clock

log = logging.getLogger(__name__)

_COMMON = [
    """CREATE TABLE IF NOT EXISTS acks (event_id TEXT PRIMARY KEY, user_name TEXT NOT NULL,
       acked_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, site_id TEXT NOT NULL,
       last_seen TEXT NOT NULL, fps REAL, camera_state TEXT, state TEXT NOT NULL,
       health TEXT)""",
    """CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
       sites TEXT NOT NULL, created_at TEXT NOT NULL)""",
    # One row per login: the signed session cookie names its login_id, so logout can
    # revoke a cookie that was copied before (cookie sessions alone cannot).
    """CREATE TABLE IF NOT EXISTS logins (login_id TEXT PRIMARY KEY, user_name TEXT NOT NULL,
       started_at TEXT NOT NULL, ended_at TEXT)""",
    # Failed logins per throttle key ("user:alice", "ip:10.0.0.5"), shared by every
    # dashboard process on this database (dashboard.throttle).
    """CREATE TABLE IF NOT EXISTS login_failures (throttle_key TEXT NOT NULL,
       failed_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (throttle_key, failed_at)",
    "CREATE INDEX IF NOT EXISTS events_site_seq ON events (site_id, seq)",
    "CREATE INDEX IF NOT EXISTS events_received ON events (received_at)",
]
_EVENTS = """CREATE TABLE IF NOT EXISTS events (seq {serial}, event_id TEXT NOT NULL UNIQUE,
       site_id TEXT NOT NULL, kind TEXT NOT NULL, observed_at TEXT NOT NULL,
       received_at TEXT NOT NULL, person_id TEXT, person_name TEXT, body TEXT NOT NULL)"""


class Store:
    def __init__(self, url: str, *, clock: Clock = time.time) -> None:
        self.url = url
        #: Stamps received/seen/acknowledged times and ages retention (tests move it).
        self.clock = clock
        self._lock = threading.Lock()
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg

            self.backend = "postgresql"
            self._conn: Any = psycopg.connect(url, autocommit=True)
            serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
        elif url.startswith("sqlite:///"):
            self.backend = "sqlite"
            path = url[len("sqlite:///"):]
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
        else:
            raise ValueError(f"unsupported database URL {url!r} (sqlite:/// or postgresql://)")
        for ddl in [_EVENTS.format(serial=serial), *_COMMON]:
            self._exec(ddl)

    def now(self) -> str:
        """The store's clock as a timestamp in the one format (UTC ``…Z``)."""
        return format_time(datetime.fromtimestamp(self.clock(), UTC))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, args: tuple[Any, ...], fetch: bool) -> Any:
        if self.backend == "postgresql" and self._conn.closed:
            # the server restarted or dropped us: one reconnect per request, then errors
            import psycopg

            log.warning("database connection lost; reconnecting")
            self._conn = psycopg.connect(self.url, autocommit=True)
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), args)
            if not fetch:
                return int(cur.rowcount or 0)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            cur.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.backend == "postgresql" else sql

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._lock:
            return int(self._execute(sql, tuple(args), False))

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            rows: list[dict[str, Any]] = self._execute(sql, tuple(args), True)
            return rows

    # events ---------------------------------------------------------------
    def add_event(self, event: DeskEvent) -> dict[str, Any] | None:
        """Store ``event``; return its record, or None if this event_id is already stored."""
        person_id = event.match.person_id if event.match else None
        details = event.customer or event.case or {}
        name = details.get("name") if isinstance(details.get("name"), str) else None
        inserted = self._exec(
            "INSERT INTO events (event_id, site_id, kind, observed_at, received_at, person_id,"
            " person_name, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            (event.event_id, event.site_id, event.kind, event.observed_at, self.now(), person_id,
             name, event.to_json()))
        if not inserted:
            return None
        if event.kind in ("device_status", "device_offline") and event.device_id:
            self._update_device(event)
        return self.get_event(event.event_id)

    def _update_device(self, event: DeskEvent) -> None:
        health = event.health
        state = "offline" if event.kind == "device_offline" else "online"
        self._exec(
            "INSERT INTO devices (device_id, site_id, last_seen, fps, camera_state, state, health)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
            " site_id = excluded.site_id, last_seen = CASE WHEN excluded.state = 'online'"
            " THEN excluded.last_seen ELSE devices.last_seen END, fps = COALESCE(excluded.fps,"
            " devices.fps), camera_state = COALESCE(excluded.camera_state, devices.camera_state),"
            " state = excluded.state, health = COALESCE(excluded.health, devices.health)",
            (event.device_id, event.site_id, self.now(), health.fps if health else None,
             health.camera_state if health else None, state,
             health.to_json() if health else None))

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        rows = self._rows(_SELECT + " WHERE e.event_id = ?", (event_id,))
        return _record(rows[0]) if rows else None

    def events(self, sites: Sequence[str], *, after: str | None = None,
               person: str | None = None, since: str | None = None, until: str | None = None,
               kind: str | None = None, unacked: bool = False,
               limit: int = 200) -> list[dict[str, Any]]:
        """Events of ``sites``: after an event (arrival order, oldest first) or newest first."""
        if not sites:
            return []
        where = [f"e.site_id IN ({', '.join('?' * len(sites))})"]
        args: list[Any] = list(sites)
        if after is not None:
            where.append("e.seq > COALESCE((SELECT seq FROM events WHERE event_id = ?), "
                         "(SELECT COALESCE(MAX(seq), 0) FROM events WHERE event_id <= ?))")
            args += [after, after]
        if person:
            where.append("(LOWER(e.person_id) LIKE ? OR LOWER(e.person_name) LIKE ?)")
            pattern = "%" + person.lower().replace("%", "").replace("_", "") + "%"
            args += [pattern, pattern]
        if since:
            where.append("e.observed_at >= ?")
            args.append(since)
        if until:
            where.append("e.observed_at <= ?")
            args.append(until)
        if kind:
            where.append("e.kind = ?")
            args.append(kind)
        if unacked:
            where.append("a.event_id IS NULL")
        order = "ASC" if after is not None else "DESC"
        sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY e.seq {order} LIMIT ?"
        return [_record(r) for r in self._rows(sql, [*args, limit])]

    def acknowledge(self, event_id: str, user: str) -> dict[str, Any]:
        """Record who acknowledged an event; the first acknowledgement wins."""
        self._exec("INSERT INTO acks (event_id, user_name, acked_at) VALUES (?, ?, ?)"
                   " ON CONFLICT (event_id) DO NOTHING", (event_id, user, self.now()))
        row = self._rows("SELECT user_name, acked_at FROM acks WHERE event_id = ?", (event_id,))
        return {"event_id": event_id, "by": row[0]["user_name"], "at": row[0]["acked_at"]}

    def purge(self, older_than_days: float) -> int:
        cutoff = format_time(datetime.fromtimestamp(self.clock(), UTC)
                             - timedelta(days=older_than_days))
        self._exec("DELETE FROM acks WHERE event_id IN "
                   "(SELECT event_id FROM events WHERE received_at < ?)", (cutoff,))
        removed = self._exec("DELETE FROM events WHERE received_at < ?", (cutoff,))
        self._exec("DELETE FROM logins WHERE ended_at < ?", (cutoff,))
        # failures older than a day no longer count in any window (login_window_s ≤ 1 day)
        self._exec("DELETE FROM login_failures WHERE failed_at < ?",
                   (datetime.now(UTC).timestamp() - 86_400,))
        if removed:
            log.info("purged %d events received before %s", removed, cutoff)
        return removed

    # devices --------------------------------------------------------------
    def devices(self, sites: Sequence[str]) -> list[dict[str, Any]]:
        if not sites:
            return []
        rows = self._rows("SELECT device_id, site_id, last_seen, fps, camera_state, state"
                          f" FROM devices WHERE site_id IN ({', '.join('?' * len(sites))})"
                          " ORDER BY device_id", list(sites))
        return rows

    # users ----------------------------------------------------------------
    def put_user(self, name: str, password_hash: str, sites: Sequence[str]) -> None:
        self._exec("INSERT INTO users (name, password_hash, sites, created_at) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,"
                   " sites = excluded.sites", (name, password_hash, json.dumps(list(sites)),
                                               self.now()))

    def remove_user(self, name: str) -> bool:
        """Delete a user (their open logins end with them); False if there was none."""
        return self._exec("DELETE FROM users WHERE name = ?", (name,)) > 0

    def get_user(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT name, password_hash, sites FROM users WHERE name = ?", (name,))
        if not rows:
            return None
        return {**rows[0], "sites": json.loads(rows[0]["sites"])}

    # logins ---------------------------------------------------------------
    def start_login(self, user: str) -> str:
        login_id = secrets.token_urlsafe(24)
        self._exec("INSERT INTO logins (login_id, user_name, started_at) VALUES (?, ?, ?)",
                   (login_id, user, self.now()))
        return login_id

    def login_user(self, login_id: str) -> dict[str, Any] | None:
        """``{name, sites}`` of the user of a login that has not ended and whose user
        still exists, else None."""
        rows = self._rows("SELECT u.name, u.sites FROM logins l JOIN users u"
                          " ON u.name = l.user_name WHERE l.login_id = ? AND l.ended_at IS NULL",
                          (login_id,))
        return {**rows[0], "sites": json.loads(rows[0]["sites"])} if rows else None

    def end_login(self, login_id: str) -> None:
        self._exec("UPDATE logins SET ended_at = ? WHERE login_id = ? AND ended_at IS NULL",
                   (self.now(), login_id))

    # login throttle -------------------------------------------------------
    def add_login_failure(self, key: str, at: float, *, forget_before: float) -> None:
        """Record a failed login for ``key`` at ``at`` (epoch s); drop this key's older ones."""
        self._exec("DELETE FROM login_failures WHERE throttle_key = ? AND failed_at < ?",
                   (key, forget_before))
        self._exec("INSERT INTO login_failures (throttle_key, failed_at) VALUES (?, ?)",
                   (key, at))

    def count_login_failures(self, key: str, since: float) -> int:
        rows = self._rows("SELECT COUNT(*) AS n FROM login_failures WHERE throttle_key = ?"
                          " AND failed_at >= ?", (key, since))
        return int(rows[0]["n"])

    def clear_login_failures(self, key: str) -> None:
        self._exec("DELETE FROM login_failures WHERE throttle_key = ?", (key,))

    def ping(self) -> bool:
        return bool(self._rows("SELECT 1 AS ok"))


_SELECT = ("SELECT e.seq, e.event_id, e.site_id, e.kind, e.observed_at, e.received_at, e.body,"
           " a.user_name AS ack_by, a.acked_at AS ack_at FROM events e"
           " LEFT JOIN acks a ON a.event_id = e.event_id")


def _record(row: dict[str, Any]) -> dict[str, Any]:
    ack = {"by": row["ack_by"], "at": row["ack_at"]} if row["ack_by"] else None
    return {"seq": row["seq"], "event_id": row["event_id"], "site_id": row["site_id"],
            "kind": row["kind"], "observed_at": row["observed_at"],
            "received_at": row["received_at"], "event": json.loads(row["body"]), "ack": ack}
