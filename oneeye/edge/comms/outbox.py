"""The durable outbox: events on disk from the moment they exist until the broker acks them.

An SQLite database in WAL mode with ``synchronous=FULL``: :meth:`Outbox.put` has
returned only once the event is on disk, so a ``kill -9`` or a power cut after
that point loses nothing. The sender reads :meth:`peek` in insertion order,
publishes, and :meth:`ack` deletes a row only after the PUBACK / IPC success, so
after a reconnect or a restart the backlog replays in order (an event may be
delivered twice if the process dies between the ack and the delete — consumers
deduplicate on ``event_id``).

The outbox is bounded (``max_events``). A device offline for days drops its
*oldest* events first, because the newest matter most to a teller; each drop is
counted in a persistent counter, logged with its event id, and reported in
health — never silent. A message the broker refuses for good (not authorised,
too large) is moved to the ``rejected`` table, counted and logged, instead of
blocking everything behind it.

A file that is not an SQLite database (disk corruption) is moved aside as
``NAME.corrupt-<time>`` and a new outbox is started, with an error logged and
the ``corrupt_files`` counter set, so the edge keeps working.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    rejected_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Item:
    seq: int
    event_id: str
    topic: str
    payload: bytes
    attempts: int


class Outbox:
    """Thread-safe; one instance per file per process."""

    def __init__(self, path: str | Path, max_events: int = 10_000) -> None:
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        self.path = Path(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        corrupt = 0
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error("outbox %s is unreadable (%s): moved aside to %s, starting a new one",
                      self.path, exc, aside)
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.path) + suffix)
                if src.exists():
                    src.replace(Path(str(aside) + suffix))
            self._db = self._open()
            corrupt = 1
        if corrupt:
            self._bump("corrupt_files", corrupt)
        self._trim()  # a smaller max_events after a restart applies at once

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: the commit is fsynced before put() returns — survives power loss too.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    # -- writing --------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, event_id: str) -> int:
        """Store one message durably; returns its sequence number."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO outbox (event_id, topic, payload, created_at) VALUES (?,?,?,?)",
                    (event_id, topic, payload, time.time()))
                dropped = self._trim_locked()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            seq = int(cur.lastrowid or 0)
        if dropped:
            log.warning("outbox full (%d): dropped %d oldest event(s): %s", self.max_events,
                        len(dropped), ", ".join(dropped[:10]) + (" …" if len(dropped) > 10 else ""))
        return seq

    def _trim(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            dropped = self._trim_locked()
            self._db.execute("COMMIT")
        if dropped:
            log.warning("outbox over its bound of %d at start: dropped %d oldest event(s)",
                        self.max_events, len(dropped))

    def _trim_locked(self) -> list[str]:
        (depth,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        excess = int(depth) - self.max_events
        if excess <= 0:
            return []
        rows = self._db.execute("SELECT seq, event_id FROM outbox ORDER BY seq LIMIT ?",
                                (excess,)).fetchall()
        self._db.execute("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
        self._bump_locked("dropped", len(rows))
        return [str(r[1]) for r in rows]

    # -- sending --------------------------------------------------------------------

    def peek(self, limit: int = 100) -> list[Item]:
        """The oldest ``limit`` messages, in order, without removing them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, topic, payload, attempts FROM outbox ORDER BY seq LIMIT ?",
                (limit,)).fetchall()
        return [Item(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4])) for r in rows]

    def ack(self, seq: int) -> None:
        """The broker has the message: forget it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            if cur.rowcount:
                self._bump_locked("sent", 1)
            self._db.execute("COMMIT")

    def attempt(self, seq: int) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def reject(self, seq: int, reason: str) -> None:
        """Set a message aside for good (kept for inspection, counted, logged)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT event_id, topic, payload FROM outbox WHERE seq = ?",
                                   (seq,)).fetchone()
            if row is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO rejected VALUES (?,?,?,?,?,?)",
                    (seq, row[0], row[1], row[2], reason[:500], time.time()))
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                self._bump_locked("rejected", 1)
            self._db.execute("COMMIT")
        if row is not None:
            log.error("event %s on %s rejected for good and set aside: %s", row[0], row[1], reason)

    # -- counters -------------------------------------------------------------------

    def _bump(self, name: str, n: int) -> None:
        with self._lock:
            self._bump_locked(name, n)

    def _bump_locked(self, name: str, n: int) -> None:
        self._db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                         "SET value = value + excluded.value", (name, n))

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def depth(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(n)

    @property
    def dropped(self) -> int:
        """Events dropped for the bound, over the outbox file's whole life."""
        return self.counter("dropped")

    def stats(self) -> dict[str, int]:
        return {"depth": self.depth(), "dropped": self.dropped, "sent": self.counter("sent"),
                "rejected": self.counter("rejected"),
                "corrupt_files": self.counter("corrupt_files")}

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                log.debug("outbox close failed", exc_info=True)
