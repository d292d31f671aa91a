# Long module: one SQLite file's whole life (queue, counters, storage-fault fallback to
# memory) shares one lock and one connection; split, each half would reach into the other.
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

Storage faults (:mod:`.storage` names them). A file SQLite cannot read as a database
(``corrupt``) is moved aside as ``NAME.corrupt-<time>`` and a new outbox is started, with
an error logged and the ``corrupt_files`` counter set. Every other fault — a full disk, a
quota, a read-only mount, a permission, a missing directory — leaves the file where it is
(its backlog is intact, only unreachable): new events wait in memory, at most
``max_memory`` of them (beyond that the oldest customer sighting goes first, a
missing-person sighting only when nothing else is left; each drop counted and logged),
they are sent from memory if the broker is reachable, the state is in :attr:`storage` for
health, one line is logged per change of state, and the file is retried every
``retry_s``; once it opens and writes again the events still in memory are written to it
and the backlog on disk is sent. Nothing here raises for a storage fault, so the edge
never exits (or restart-loops) over one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneeye.edge.storage import classify
from oneeye.events import StorageHealth
from oneeye.types import utc_now

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


@dataclass
class _Held:
    """An event waiting in memory while the file cannot be written (seq < 0)."""

    seq: int
    event_id: str
    topic: str
    payload: bytes
    keep: bool
    attempts: int = 0


class Outbox:
    """Thread-safe; one instance per file per process.

    ``max_memory``: events held in memory while the file cannot be written; ``retry_s``:
    how often the file is retried then; ``clock``: monotonic seconds (tests move it).
    """

    def __init__(self, path: str | Path, max_events: int = 10_000, *, max_memory: int = 1000,
                 retry_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        if max_memory < 1:
            raise ValueError("max_memory must be >= 1")
        self.path = Path(path)
        self.max_events = max_events
        self.max_memory = max_memory
        self.retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._memory: list[_Held] = []
        self._next_mem = -1
        self._retry_at = 0.0
        #: Counters of events that never touched the file (added to the file's counters).
        self._mem_counts: dict[str, int] = {}
        self._flushed = 0   # events moved from memory to the file at the last reopen
        self.storage = StorageHealth(state="ok", path=str(self.path))
        with self._lock:
            self._reopen_locked()
        if self._db is not None:
            self._trim()  # a smaller max_events after a restart applies at once

    # -- opening and storage faults -------------------------------------------------

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

    def _reopen_locked(self) -> None:
        """Open the file (moving a corrupt one aside), then write what waits in memory."""
        self._retry_at = self._clock() + self.retry_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                state, detail = classify(exc, self.path.parent)
                if state != "corrupt":
                    raise
                self._move_aside(detail)
                self._db = self._open()
                self._bump_locked("corrupt_files", 1)
            self._flush_memory_locked()
        except (sqlite3.Error, OSError) as exc:
            self._fault_locked(exc)
            return
        if self.storage.state != "ok":
            log.warning("outbox %s: storage ok again after %s; %d event(s) kept in memory "
                        "written to it", self.path, self.storage.state, self._flushed)
        self.storage = StorageHealth(state="ok", path=str(self.path),
                                     memory_dropped=self._mem_counts.get("dropped", 0))

    def _move_aside(self, why: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.error("outbox %s is unreadable, not a database (%s): moved aside to %s, starting a "
                  "new one", self.path, why, aside)
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.replace(Path(str(aside) + suffix))

    def _flush_memory_locked(self) -> None:
        """Write the events held in memory to the (re)opened file, in order, in one commit."""
        assert self._db is not None
        self._flushed = len(self._memory)
        if not self._memory:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for held in self._memory:
                self._db.execute(
                    "INSERT INTO outbox (event_id, topic, payload, created_at, attempts) "
                    "VALUES (?,?,?,?,?)",
                    (held.event_id, held.topic, held.payload, time.time(), held.attempts))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._memory.clear()

    def _fault_locked(self, exc: BaseException) -> None:
        """The file failed: name the fault, close it, keep events in memory, retry later."""
        state, detail = classify(exc, self.path.parent)
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                log.debug("outbox close after a fault failed", exc_info=True)
            self._db = None
        self._retry_at = self._clock() + self.retry_s
        if state != self.storage.state:  # one line per change of state, not per event
            log.error("outbox %s: storage %s (%s); the file is kept as it is, new events wait "
                      "in memory (up to %d) and are sent from there, retrying every %g s",
                      self.path, state, detail, self.max_memory, self.retry_s)
        self.storage = StorageHealth(
            state=state, path=str(self.path), detail=detail,
            since=self.storage.since if state == self.storage.state else utc_now(),
            memory_events=len(self._memory), memory_dropped=self._mem_counts.get("dropped", 0))

    def _rollback(self) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            log.debug("outbox rollback failed", exc_info=True)

    def _usable_locked(self) -> bool:
        """True when the file is open; retries it (at most every ``retry_s``) when not."""
        if self._db is None and self._clock() >= self._retry_at:
            self._reopen_locked()
        return self._db is not None

    def retry(self) -> bool:
        """Try the file again now (whatever ``retry_s`` says); True when it is in use."""
        with self._lock:
            if self._db is None:
                self._reopen_locked()
            return self._db is not None

    # -- writing --------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, event_id: str, *, keep: bool = False) -> int:
        """Store one message; returns its sequence number (< 0: held in memory).

        Durable on disk when the storage is ``ok``; otherwise held in memory (see the module
        doc). ``keep``: a missing-person sighting, dropped from memory last.
        """
        with self._lock:
            if self._usable_locked():
                try:
                    seq, dropped = self._insert_locked(topic, payload, event_id)
                except (sqlite3.Error, OSError) as exc:
                    self._fault_locked(exc)
                else:
                    if dropped:
                        log.warning("outbox full (%d): dropped %d oldest event(s): %s",
                                    self.max_events, len(dropped), ", ".join(dropped[:10])
                                    + (" …" if len(dropped) > 10 else ""))
                    return seq
            return self._hold_locked(topic, payload, event_id, keep)

    def _insert_locked(self, topic: str, payload: bytes, event_id: str) -> tuple[int, list[str]]:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                "INSERT INTO outbox (event_id, topic, payload, created_at) VALUES (?,?,?,?)",
                (event_id, topic, payload, time.time()))
            dropped = self._trim_locked()
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return int(cur.lastrowid or 0), dropped

    def _hold_locked(self, topic: str, payload: bytes, event_id: str, keep: bool) -> int:
        seq = self._next_mem
        self._next_mem -= 1
        self._memory.append(_Held(seq, event_id, topic, payload, keep))
        if len(self._memory) > self.max_memory:
            # The oldest customer sighting goes first; a missing person's only when no other.
            victim = next((h for h in self._memory if not h.keep), self._memory[0])
            self._memory.remove(victim)
            self._mem_counts["dropped"] = self._mem_counts.get("dropped", 0) + 1
            log.warning("outbox: %d event(s) waiting in memory (storage %s): dropped %s%s",
                        self.max_memory, self.storage.state, victim.event_id,
                        " (a missing-person sighting: nothing else was left)"
                        if victim.keep else "")
        self.storage = self.storage.model_copy(update={
            "memory_events": len(self._memory),
            "memory_dropped": self._mem_counts.get("dropped", 0)})
        return seq

    def _trim(self) -> None:
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                dropped = self._trim_locked()
                self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                self._rollback()
                self._fault_locked(exc)
                return
        if dropped:
            log.warning("outbox over its bound of %d at start: dropped %d oldest event(s)",
                        self.max_events, len(dropped))

    def _trim_locked(self) -> list[str]:
        assert self._db is not None
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
        """The oldest ``limit`` messages, in order, without removing them: the file's first,
        then those held in memory (newer: they arrived while the file failed)."""
        with self._lock:
            items: list[Item] = []
            if self._usable_locked():
                try:
                    rows = self._read_locked(
                        "SELECT seq, event_id, topic, payload, attempts FROM outbox "
                        "ORDER BY seq LIMIT ?", (limit,))
                    items = [Item(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4]))
                             for r in rows]
                except (sqlite3.Error, OSError) as exc:
                    self._fault_locked(exc)
            items += [Item(h.seq, h.event_id, h.topic, h.payload, h.attempts)
                      for h in self._memory[: max(0, limit - len(items))]]
        return items

    def _read_locked(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        assert self._db is not None
        return self._db.execute(sql, args).fetchall()

    def _write_locked(self, *statements: tuple[str, tuple[object, ...]]) -> int:
        """Run ``statements`` in one transaction; the first one's rowcount. A storage fault
        is recorded (and the change stays undone: the row is sent again, deduplicated)."""
        if not self._usable_locked():
            return 0
        assert self._db is not None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            first = -1
            for sql, args in statements:
                n = self._db.execute(sql, args).rowcount
                first = n if first < 0 else first
            self._db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._rollback()
            self._fault_locked(exc)
            return 0
        return max(first, 0)

    def _held(self, seq: int) -> _Held | None:
        return next((h for h in self._memory if h.seq == seq), None)

    def _count_mem(self, name: str) -> None:
        self._mem_counts[name] = self._mem_counts.get(name, 0) + 1

    def ack(self, seq: int) -> None:
        """The broker has the message: forget it."""
        with self._lock:
            if seq < 0:
                held = self._held(seq)
                if held is not None:
                    self._memory.remove(held)
                    self._count_mem("sent")
                    self.storage = self.storage.model_copy(
                        update={"memory_events": len(self._memory)})
                return
            if self._write_locked(("DELETE FROM outbox WHERE seq = ?", (seq,))):
                self._write_locked(*self._bump_sql("sent", 1))

    def attempt(self, seq: int) -> None:
        with self._lock:
            held = self._held(seq) if seq < 0 else None
            if held is not None:
                held.attempts += 1
            elif seq >= 0:
                self._write_locked(("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?",
                                    (seq,)))

    def reject(self, seq: int, reason: str) -> None:
        """Set a message aside for good (kept for inspection, counted, logged)."""
        row: tuple[str, str] | None = None
        with self._lock:
            held = self._held(seq) if seq < 0 else None
            if held is not None:
                self._memory.remove(held)
                self._count_mem("rejected")
                row = (held.event_id, held.topic)
            elif seq >= 0 and self._usable_locked():
                found = self._read_locked(
                    "SELECT event_id, topic, payload FROM outbox WHERE seq = ?", (seq,))
                if found and self._write_locked(
                        ("INSERT OR REPLACE INTO rejected VALUES (?,?,?,?,?,?)",
                         (seq, found[0][0], found[0][1], found[0][2], reason[:500],
                          time.time())),
                        ("DELETE FROM outbox WHERE seq = ?", (seq,)),
                        *self._bump_sql("rejected", 1)):
                    row = (str(found[0][0]), str(found[0][1]))
        if row is not None:
            log.error("event %s on %s rejected for good and set aside: %s", row[0], row[1], reason)

    # -- counters -------------------------------------------------------------------

    @staticmethod
    def _bump_sql(name: str, n: int) -> tuple[tuple[str, tuple[object, ...]]]:
        return (("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                 "SET value = value + excluded.value", (name, n)),)

    def _bump_locked(self, name: str, n: int) -> None:
        assert self._db is not None
        self._db.execute(*self._bump_sql(name, n)[0])

    def counter(self, name: str) -> int:
        """A counter over the file's whole life, plus this process's events held in memory."""
        with self._lock:
            value = self._mem_counts.get(name, 0)
            if self._usable_locked():
                try:
                    row = self._read_locked("SELECT value FROM counters WHERE name = ?", (name,))
                except (sqlite3.Error, OSError) as exc:
                    self._fault_locked(exc)
                else:
                    value += int(row[0][0]) if row else 0
        return value

    def depth(self) -> int:
        """Events waiting: in the file (when it can be read) and in memory."""
        with self._lock:
            n = len(self._memory)
            if self._usable_locked():
                try:
                    n += int(self._read_locked("SELECT count(*) FROM outbox")[0][0])
                except (sqlite3.Error, OSError) as exc:
                    self._fault_locked(exc)
        return n

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
            if self._memory and self._db is None:
                self._reopen_locked()   # a last chance for the events held in memory
            if self._memory:
                log.error("outbox %s: storage %s: %d event(s) held in memory are lost at "
                          "close: %s", self.path, self.storage.state, len(self._memory),
                          ", ".join(h.event_id for h in self._memory[:20]))
            if self._db is not None:
                try:
                    self._db.close()
                except sqlite3.Error:
                    log.debug("outbox close failed", exc_info=True)
