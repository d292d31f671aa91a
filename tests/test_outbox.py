"""The durable outbox: order, ack-only deletion, bound with counted drops, bad files."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from oneeye.edge.comms.outbox import Outbox


def test_put_peek_ack_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    seqs = [box.put("t/matches", f"p{i}".encode(), f"e{i}") for i in range(5)]
    assert seqs == sorted(seqs)
    items = box.peek(3)
    assert [i.event_id for i in items] == ["e0", "e1", "e2"]
    assert box.depth() == 5  # peeking removes nothing
    box.ack(items[0].seq)
    assert [i.event_id for i in box.peek(10)] == ["e1", "e2", "e3", "e4"]
    assert box.stats()["sent"] == 1
    box.ack(items[0].seq)  # a second ack of the same row is harmless and not double-counted
    assert box.stats()["sent"] == 1


def test_survives_reopen_and_keeps_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    for i in range(4):
        box.put("t", b"x", f"e{i}")
    box.ack(box.peek(1)[0].seq)
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert [i.event_id for i in again.peek(10)] == ["e1", "e2", "e3"]
    assert again.stats()["sent"] == 1


def test_survives_kill_9_of_the_writer(tmp_path: Path) -> None:
    """Everything put() returned for is on disk even if the process dies without closing."""
    code = (
        "import os, sys; from oneeye.edge.comms.outbox import Outbox\n"
        f"b = Outbox({str(tmp_path / 'o.db')!r})\n"
        "for i in range(50): b.put('t', b'x', f'e{i}')\n"
        "print('done', flush=True); os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9 and "done" in proc.stdout
    assert [i.event_id for i in Outbox(tmp_path / "o.db").peek(100)] == [f"e{i}" for i in
                                                                          range(50)]


def test_bound_drops_oldest_first_and_counts_every_drop(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "o.db", max_events=10)
    with caplog.at_level(logging.WARNING, logger="oneeye.edge.comms.outbox"):
        for i in range(25):
            box.put("t", b"x", f"e{i}")
    assert box.depth() == 10
    assert [i.event_id for i in box.peek(100)] == [f"e{i}" for i in range(15, 25)]
    assert box.dropped == 15
    assert "dropped 1 oldest event(s): e0" in caplog.text  # each drop names its event
    box.close()
    # The counter is persistent, and a smaller bound after a restart applies at once.
    smaller = Outbox(tmp_path / "o.db", max_events=4)
    assert smaller.depth() == 4 and smaller.dropped == 21
    assert [i.event_id for i in smaller.peek(100)] == ["e21", "e22", "e23", "e24"]


def test_reject_sets_aside_and_counts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put("t", b"a", "e0")
    box.put("t", b"b", "e1")
    box.reject(box.peek(1)[0].seq, "not authorised")
    assert [i.event_id for i in box.peek(10)] == ["e1"]
    assert box.stats()["rejected"] == 1
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert db.execute("SELECT event_id, reason FROM rejected").fetchall() == [
            ("e0", "not authorised")]


def test_corrupt_file_is_moved_aside_not_fatal(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not an sqlite database" * 100)
    with caplog.at_level(logging.ERROR, logger="oneeye.edge.comms.outbox"):
        box = Outbox(path)
    assert "unreadable" in caplog.text
    assert list(tmp_path.glob("o.db.corrupt-*"))
    assert box.stats()["corrupt_files"] == 1
    box.put("t", b"x", "e0")
    assert box.depth() == 1


def test_uses_wal(tmp_path: Path) -> None:
    Outbox(tmp_path / "o.db").put("t", b"x", "e0")
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_invalid_bound_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_events"):
        Outbox(tmp_path / "o.db", max_events=0)
