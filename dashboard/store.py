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
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from oneeye.events import DeskEvent
from oneeye.types import ALERT_KINDS, ROLES, Clock, format_time

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
    # Every event id ever stored, kept much longer than the events themselves: a replay
    # of a purged event must still be a duplicate, not a new unacknowledged banner.
    """CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY,
       received_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS seen_events_received ON seen_events (received_at)",
    # The latest verdict per event; every verdict given is also an audit row.
    """CREATE TABLE IF NOT EXISTS feedback (event_id TEXT PRIMARY KEY, verdict TEXT NOT NULL,
       user_name TEXT NOT NULL, given_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_site_seq ON events (site_id, seq)",
    "CREATE INDEX IF NOT EXISTS events_received ON events (received_at)",
    "CREATE INDEX IF NOT EXISTS audit_at ON audit (at)",
]
_EVENTS = """CREATE TABLE IF NOT EXISTS events (seq {serial}, event_id TEXT NOT NULL UNIQUE,
       site_id TEXT NOT NULL, kind TEXT NOT NULL, observed_at TEXT NOT NULL,
       received_at TEXT NOT NULL, person_id TEXT, person_name TEXT, body TEXT NOT NULL)"""
#: Who did what, when: acknowledgements, verdicts, closed cases, photo changes, users.
_AUDIT = """CREATE TABLE IF NOT EXISTS audit (seq {serial}, at TEXT NOT NULL,
       user_name TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
       site_id TEXT, detail TEXT NOT NULL)"""
#: Columns added after the first release: (table, column, type). Added at start when absent.
_ADDED = [("users", "role", "TEXT NOT NULL DEFAULT 'teller'"), ("users", "agency", "TEXT"),
          ("events", "device_id", "TEXT")]


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
                # Names, contacts and logins: owner-only, before SQLite creates it (its
                # -wal and -shm files take the database file's permissions).
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
                os.chmod(path, 0o600)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
        else:
            raise ValueError(f"unsupported database URL {url!r} (sqlite:/// or postgresql://)")
        for ddl in [_EVENTS.format(serial=serial), _AUDIT.format(serial=serial), *_COMMON]:
            self._exec(ddl)
        for table, column, kind in _ADDED:
            if column not in self._columns(table):
                self._exec(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _columns(self, table: str) -> set[str]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")
                return {d[0] for d in cur.description}
            finally:
                cur.close()

    def now(self) -> str:
        """The store's clock as a timestamp in the one format (UTC ``…Z``)."""
        return format_time(datetime.fromtimestamp(self.clock(), UTC))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, args: tuple[Any, ...], fetch: bool) -> Any:
        if self.backend != "postgresql":
            return self._run(sql, args, fetch)
        import psycopg

        if not self._conn.closed:
            try:
                return self._run(sql, args, fetch)
            except psycopg.OperationalError:
                if not self._conn.closed:
                    raise
        # the server restarted or dropped us: one reconnect per request, then errors (every
        # statement is idempotent: inserts are ON CONFLICT DO NOTHING, updates set values)
        log.warning("database connection lost; reconnecting")
        self._conn = psycopg.connect(self.url, autocommit=True)
        return self._run(sql, args, fetch)

    def _run(self, sql: str, args: tuple[Any, ...], fetch: bool) -> Any:
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
        """Store ``event``; return its record, or None if this event_id is already stored.

        ``device_status`` is not stored as an event (a fleet sends one every 30 s per
        device): it updates the device's row, and only a change of state is recorded —
        see :meth:`device_seen`.
        """
        if event.kind == "device_status":
            raise ValueError("device_status updates a device (device_seen), it is no event")
        person_id = event.match.person_id if event.match else None
        details = event.customer or event.case or {}
        name = details.get("name") if isinstance(details.get("name"), str) else None
        now = self.now()
        inserted = self._exec(
            "INSERT INTO events (event_id, site_id, kind, observed_at, received_at, person_id,"
            " person_name, device_id, body) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM seen_events WHERE event_id = ?) ON CONFLICT (event_id) DO NOTHING",
            (event.event_id, event.site_id, event.kind, event.observed_at, now, person_id,
             name, event.device_id, event.to_json(), event.event_id))
        if not inserted:
            return None
        self._exec("INSERT INTO seen_events (event_id, received_at) VALUES (?, ?)"
                   " ON CONFLICT (event_id) DO NOTHING", (event.event_id, now))
        return self.get_event(event.event_id)

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        rows = self._rows(_SELECT + " WHERE e.event_id = ?", (event_id,))
        return _record(rows[0]) if rows else None

    def _filters(self, sites: Sequence[str], *, person: str | None, since: str | None,
                 until: str | None, kinds: Sequence[str] | None, unacked: bool,
                 person_id: str | None = None) -> tuple[list[str], list[Any]]:
        where = [f"e.site_id IN ({', '.join('?' * len(sites))})"]
        args: list[Any] = list(sites)
        if person:
            # "_" is an id character, not a wildcard: escape LIKE's metacharacters.
            where.append("(LOWER(e.person_id) LIKE ? ESCAPE '!' "
                         "OR LOWER(e.person_name) LIKE ? ESCAPE '!')")
            literal = person.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
            pattern = f"%{literal}%"
            args += [pattern, pattern]
        if person_id:
            where.append("e.person_id = ?")
            args.append(person_id)
        if since:
            where.append("e.observed_at >= ?")
            args.append(since)
        if until:
            where.append("e.observed_at <= ?")
            args.append(until)
        if kinds:
            where.append(f"e.kind IN ({', '.join('?' * len(kinds))})")
            args += list(kinds)
        if unacked:
            where.append("a.event_id IS NULL")
        return where, args

    def events(self, sites: Sequence[str], *, after: str | None = None,
               person: str | None = None, since: str | None = None, until: str | None = None,
               kind: str | None = None, kinds: Sequence[str] | None = None,
               person_id: str | None = None, unacked: bool = False, offset: int = 0,
               limit: int = 200) -> list[dict[str, Any]]:
        """Events of ``sites``: after an event (arrival order, oldest first) or newest first.

        ``offset`` pages newest-first results (history); ``after`` pages catch-up.
        """
        if not sites:
            return []
        where, args = self._filters(sites, person=person, since=since, until=until,
                                    kinds=[kind] if kind else kinds, unacked=unacked,
                                    person_id=person_id)
        if after is not None:
            where.append("e.seq > COALESCE((SELECT seq FROM events WHERE event_id = ?), "
                         "(SELECT COALESCE(MAX(seq), 0) FROM events WHERE event_id <= ?))")
            args += [after, after]
        order = "ASC" if after is not None else "DESC"
        sql = (f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY e.seq {order}"
               " LIMIT ? OFFSET ?")
        return [_record(r) for r in self._rows(sql, [*args, limit, max(offset, 0)])]

    def count_events(self, sites: Sequence[str], *, person: str | None = None,
                     since: str | None = None, until: str | None = None,
                     kinds: Sequence[str] | None = None, person_id: str | None = None) -> int:
        """How many events :meth:`events` would page through with the same filters."""
        if not sites:
            return 0
        where, args = self._filters(sites, person=person, since=since, until=until,
                                    kinds=kinds, unacked=False, person_id=person_id)
        rows = self._rows("SELECT COUNT(*) AS n FROM events e LEFT JOIN acks a ON"
                          f" a.event_id = e.event_id WHERE {' AND '.join(where)}", args)
        return int(rows[0]["n"])

    def acknowledge(self, event_id: str, user: str) -> dict[str, Any]:
        """Record who acknowledged an event; the first acknowledgement wins."""
        self._exec("INSERT INTO acks (event_id, user_name, acked_at) VALUES (?, ?, ?)"
                   " ON CONFLICT (event_id) DO NOTHING", (event_id, user, self.now()))
        row = self._rows("SELECT user_name, acked_at FROM acks WHERE event_id = ?", (event_id,))
        return {"event_id": event_id, "by": row[0]["user_name"], "at": row[0]["acked_at"]}

    def open_alerts(self, sites: Sequence[str], *, limit: int = 5000) -> list[dict[str, Any]]:
        """Unacknowledged alert events (sightings, outages) of ``sites``, oldest first.

        Grouping them into one banner per case or device is :func:`dashboard.alerts.group`.
        """
        if not sites:
            return []
        where, args = self._filters(sites, person=None, since=None, until=None,
                                    kinds=ALERT_KINDS, unacked=True)
        sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY e.seq ASC LIMIT ?"
        return [_record(r) for r in self._rows(sql, [*args, limit])]

    def last_acks(self, sites: Sequence[str], subjects: Sequence[str]) -> dict[str, Any]:
        """subject → the latest acknowledgement ``{by, at}`` of an alert about it."""
        if not sites or not subjects:
            return {}
        rows = self._rows(
            "SELECT COALESCE(e.person_id, e.device_id) AS subject, a.user_name, a.acked_at"
            " FROM events e JOIN acks a ON a.event_id = e.event_id"
            f" WHERE e.site_id IN ({', '.join('?' * len(sites))})"
            f" AND COALESCE(e.person_id, e.device_id) IN ({', '.join('?' * len(subjects))})"
            f" AND e.kind IN ({', '.join('?' * len(ALERT_KINDS))}) ORDER BY a.acked_at",
            [*sites, *subjects, *ALERT_KINDS])
        return {r["subject"]: {"by": r["user_name"], "at": r["acked_at"]} for r in rows}

    def acknowledge_group(self, sites: Sequence[str], kind: str, subject: str,
                          upto_seq: int, user: str) -> list[dict[str, Any]]:
        """Acknowledge every open alert of ``kind`` about ``subject`` (a case or device id)
        in ``sites`` up to ``upto_seq`` — the ones the person saw. Later ones stay open,
        so a sighting that arrives while the button is pressed re-raises the banner.
        Returns ``{event_id, site_id, at}`` of each one acknowledged now."""
        if not sites or kind not in ALERT_KINDS:
            return []
        column = "person_id" if kind == "missing_person_sighted" else "device_id"
        rows = self._rows(
            f"SELECT e.event_id, e.site_id FROM events e LEFT JOIN acks a"
            f" ON a.event_id = e.event_id WHERE e.site_id IN ({', '.join('?' * len(sites))})"
            f" AND e.kind = ? AND e.{column} = ? AND e.seq <= ? AND a.event_id IS NULL",
            [*sites, kind, subject, upto_seq])
        at = self.now()
        for row in rows:
            self._exec("INSERT INTO acks (event_id, user_name, acked_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (event_id) DO NOTHING", (row["event_id"], user, at))
        return [{**row, "at": at} for row in rows]

    def purge(self, older_than_days: float, *, ids_older_than_days: float | None = None) -> int:
        """Delete events (and their acks, feedback) received before the cutoff; return how many.

        Their ids stay in ``seen_events`` for ``ids_older_than_days`` (at least as long as
        the events), so a replayed old message is still recognised as a duplicate.
        """
        now = datetime.fromtimestamp(self.clock(), UTC)
        ids_days = max(older_than_days, ids_older_than_days or older_than_days)
        self._exec("DELETE FROM seen_events WHERE received_at < ?",
                   (format_time(now - timedelta(days=ids_days)),))
        cutoff = format_time(now - timedelta(days=older_than_days))
        for table in ("acks", "feedback"):
            self._exec(f"DELETE FROM {table} WHERE event_id IN "
                       "(SELECT event_id FROM events WHERE received_at < ?)", (cutoff,))
        removed = self._exec("DELETE FROM events WHERE received_at < ?", (cutoff,))
        self._exec("DELETE FROM logins WHERE ended_at < ?", (cutoff,))
        # failures older than a day no longer count in any window (login_window_s ≤ 1 day)
        self._exec("DELETE FROM login_failures WHERE failed_at < ?",
                   (self.clock() - 86_400,))
        if removed:
            log.info("purged %d events received before %s", removed, cutoff)
        return removed

    # feedback and audit -----------------------------------------------------
    def give_verdict(self, event_id: str, verdict: str, user: str) -> dict[str, Any]:
        """Record ``verdict`` (confirmed / rejected) on an event; the latest one counts."""
        at = self.now()
        self._exec("INSERT INTO feedback (event_id, verdict, user_name, given_at)"
                   " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET"
                   " verdict = excluded.verdict, user_name = excluded.user_name,"
                   " given_at = excluded.given_at", (event_id, verdict, user, at))
        return {"event_id": event_id, "verdict": verdict, "by": user, "at": at}

    def rejection_counts(self, sites: Sequence[str]) -> list[dict[str, Any]]:
        """Rejected sightings per camera and watchlist: the false matches to tune on."""
        if not sites:
            return []
        rows = self._rows(
            "SELECT e.site_id, e.body, f.verdict FROM feedback f JOIN events e"
            f" ON e.event_id = f.event_id WHERE e.site_id IN ({', '.join('?' * len(sites))})",
            list(sites))
        counts: dict[tuple[str, str, str], dict[str, int]] = {}
        for row in rows:
            match = json.loads(row["body"]).get("match") or {}
            key = (row["site_id"], str(match.get("camera_id", "?")),
                   str(match.get("watchlist", "?")))
            bucket = counts.setdefault(key, {"confirmed": 0, "rejected": 0})
            bucket[row["verdict"]] = bucket.get(row["verdict"], 0) + 1
        return [{"site_id": k[0], "camera_id": k[1], "watchlist": k[2], **v}
                for k, v in sorted(counts.items(), key=lambda kv: -kv[1]["rejected"])]

    def audit(self, user: str, action: str, target: str, *, site_id: str | None = None,
              **detail: Any) -> None:
        """Append one audit row (never updated, purged with nothing)."""
        self._exec("INSERT INTO audit (at, user_name, action, target, site_id, detail)"
                   " VALUES (?, ?, ?, ?, ?, ?)",
                   (self.now(), user, action, target, site_id, json.dumps(detail, default=str)))

    def audit_rows(self, *, sites: Sequence[str] | None = None, user: str | None = None,
                   limit: int = 200) -> list[dict[str, Any]]:
        """Newest-first audit rows of ``sites`` (rows without a site included) or ``user``."""
        where: list[str] = []
        args: list[Any] = []
        if sites is not None:
            marks = ", ".join("?" * len(sites)) or "NULL"
            where.append(f"(site_id IS NULL OR site_id IN ({marks}))")
            args += list(sites)
        if user is not None:
            where.append("user_name = ?")
            args.append(user)
        sql = ("SELECT seq, at, user_name, action, target, site_id, detail FROM audit"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT ?")
        return [{**r, "detail": json.loads(r["detail"])} for r in self._rows(sql, [*args, limit])]

    # devices --------------------------------------------------------------
    def device_seen(self, event: DeskEvent) -> str:
        """A health report: upsert the device's row; return its state before (``new``,
        ``online`` or ``offline``) so the caller records only transitions."""
        if not event.device_id:
            raise ValueError("a device_status event needs a device_id")
        health = event.health
        before = self._rows("SELECT state FROM devices WHERE device_id = ?", (event.device_id,))
        self._exec(
            "INSERT INTO devices (device_id, site_id, last_seen, fps, camera_state, state, health)"
            " VALUES (?, ?, ?, ?, ?, 'online', ?) ON CONFLICT (device_id) DO UPDATE SET"
            " site_id = excluded.site_id, last_seen = excluded.last_seen,"
            " fps = excluded.fps, camera_state = COALESCE(excluded.camera_state,"
            " devices.camera_state), state = 'online', health = COALESCE(excluded.health,"
            " devices.health)",
            (event.device_id, event.site_id, self.now(), health.fps if health else None,
             health.camera_state if health else None, health.to_json() if health else None))
        return str(before[0]["state"]) if before else "new"

    def mark_offline(self, device_id: str, *, stale_before: str | None = None) -> bool:
        """Set a device offline; True only for the one call that changed it (so one process
        records the outage). ``stale_before``: only if not seen since (the sweep's check)."""
        sql = "UPDATE devices SET state = 'offline' WHERE device_id = ? AND state = 'online'"
        args: list[Any] = [device_id]
        if stale_before is not None:
            sql += " AND last_seen < ?"
            args.append(stale_before)
        return self._exec(sql, args) == 1

    def stale_devices(self, stale_before: str) -> list[dict[str, Any]]:
        """Devices still marked online whose last health is older than ``stale_before``."""
        return self._rows("SELECT device_id, site_id, last_seen FROM devices"
                          " WHERE state = 'online' AND last_seen < ?", (stale_before,))

    def devices(self, sites: Sequence[str]) -> list[dict[str, Any]]:
        if not sites:
            return []
        rows = self._rows("SELECT device_id, site_id, last_seen, fps, camera_state, state,"
                          f" health FROM devices WHERE site_id IN ({', '.join('?' * len(sites))})"
                          " ORDER BY device_id", list(sites))
        return rows

    # users ----------------------------------------------------------------
    def put_user(self, name: str, password_hash: str, sites: Sequence[str],
                 role: str = "teller", agency: str | None = None) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "agency_officer" and not agency:
            raise ValueError("an agency officer needs an agency")
        self._exec("INSERT INTO users (name, password_hash, sites, created_at, role, agency)"
                   " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                   " password_hash = excluded.password_hash, sites = excluded.sites,"
                   " role = excluded.role, agency = excluded.agency",
                   (name, password_hash, json.dumps(list(sites)), self.now(), role, agency))

    def get_user(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT name, password_hash, sites, role, agency FROM users"
                          " WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def users(self) -> list[dict[str, Any]]:
        """Every user without the password hash, by name."""
        return [_user(r) for r in self._rows("SELECT name, sites, role, agency, created_at"
                                             " FROM users ORDER BY name")]

    def remove_user(self, name: str) -> bool:
        """Delete a user (their open logins end with them); False if there was none."""
        return self._exec("DELETE FROM users WHERE name = ?", (name,)) > 0

    def sites(self) -> list[dict[str, Any]]:
        """Every site a user or a device names, with its device and user counts."""
        out: dict[str, dict[str, Any]] = {}
        for row in self._rows("SELECT site_id, COUNT(*) AS n FROM devices GROUP BY site_id"):
            out.setdefault(row["site_id"], {"site_id": row["site_id"], "devices": 0,
                                            "users": 0})["devices"] = int(row["n"])
        for user in self.users():
            for site in user["sites"]:
                out.setdefault(site, {"site_id": site, "devices": 0, "users": 0})["users"] += 1
        return sorted(out.values(), key=lambda s: str(s["site_id"]))

    # logins ---------------------------------------------------------------
    def start_login(self, user: str) -> str:
        login_id = secrets.token_urlsafe(24)
        self._exec("INSERT INTO logins (login_id, user_name, started_at) VALUES (?, ?, ?)",
                   (login_id, user, self.now()))
        return login_id

    def login_user(self, login_id: str) -> dict[str, Any] | None:
        """``{name, sites, role, agency}`` of the user of a login that has not ended and
        whose user still exists, else None."""
        rows = self._rows("SELECT u.name, u.sites, u.role, u.agency FROM logins l JOIN users u"
                          " ON u.name = l.user_name WHERE l.login_id = ? AND l.ended_at IS NULL",
                          (login_id,))
        return _user(rows[0]) if rows else None

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
           " a.user_name AS ack_by, a.acked_at AS ack_at, f.verdict, f.user_name AS verdict_by,"
           " f.given_at AS verdict_at FROM events e"
           " LEFT JOIN acks a ON a.event_id = e.event_id"
           " LEFT JOIN feedback f ON f.event_id = e.event_id")


def _user(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "sites": json.loads(row["sites"]), "role": row.get("role") or "teller"}


def _record(row: dict[str, Any]) -> dict[str, Any]:
    ack = {"by": row["ack_by"], "at": row["ack_at"]} if row["ack_by"] else None
    verdict = ({"verdict": row["verdict"], "by": row["verdict_by"], "at": row["verdict_at"]}
               if row["verdict"] else None)
    return {"seq": row["seq"], "event_id": row["event_id"], "site_id": row["site_id"],
            "kind": row["kind"], "observed_at": row["observed_at"],
            "received_at": row["received_at"], "event": json.loads(row["body"]), "ack": ack,
            "feedback": verdict}
