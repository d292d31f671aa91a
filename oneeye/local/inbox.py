"""The rules router's durable inbox: MQTT messages kept in SQLite until handled.

IoT Core hands every message that the broker accepted to the rules engine; a
message is never lost because a Lambda or the engine restarted. Locally the
broker (amqtt) keeps nothing for a subscriber that is gone: it drops a message
whose PUBACK does not come within seconds. So ``oneeye up`` subscribes to the
rules' topics in its own process (:func:`intake`) and commits each message here
*before* paho acknowledges it; the rules router (a child process that may die at
any time) takes messages from here and deletes each one only after every rule it
fired has finished (handled or dead-lettered). A router killed mid-message sees
it again after its restart; the handlers are idempotent on ``event_id``.

Table ``messages (id, topic, payload, received_at)``; ids grow in arrival order.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from oneeye.local.mqtt import Subscriber

log = logging.getLogger(__name__)

_SCHEMA = """CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL, payload BLOB NOT NULL, received_at REAL NOT NULL)"""


class Inbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # autocommit: each put is durable when it returns; WAL lets the router read
        # while the intake writes; timeout waits out the other process's write lock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a crash of any process (what kill -9 tests) and
        # needs no fsync per message; the broker drops a message not acked within 5 s
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        path.chmod(0o600)  # match payloads name people and places
        self._lock = threading.Lock()

    def put(self, topic: str, payload: bytes) -> int:
        """Keep one message; returns its id. Raises sqlite3.Error when it could not."""
        with self._lock:
            cur = self._db.execute("INSERT INTO messages (topic, payload, received_at) "
                                   "VALUES (?, ?, ?)", (topic, payload, time.time()))
            return int(cur.lastrowid or 0)

    def after(self, last_id: int, limit: int = 64) -> list[tuple[int, str, bytes]]:
        """Up to ``limit`` messages with ``id > last_id``, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload FROM messages WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (last_id, limit)).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def done(self, message_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def intake(inbox: Inbox, mqtt_url: str, filters: list[str]) -> Any:
    """Subscribe to ``filters`` and commit every message to ``inbox`` before its PUBACK."""

    def keep(topic: str, payload: bytes) -> None:
        inbox.put(topic, payload)  # paho acknowledges only after this returns

    # a persistent session: a broker that keeps sessions (Mosquitto) also queues what
    # arrives while the stack itself is down
    return Subscriber(mqtt_url, filters, keep, name="oneeye-rules-intake",
                      persistent=True).start()
