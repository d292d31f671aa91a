"""Storage faults under the edge: a full, read-only, forbidden or missing data directory.

A full disk is not a corrupt file (field case ``disk-full-outbox``): the outbox stays where
it is with its backlog, new events wait in memory, health names the state, and the backlog
is sent once the storage is back. Real faults: a tmpfs of a few hundred KB in a private
mount namespace filled with ``dd`` (ENOSPC) or remounted read-only (EROFS), a directory the
process may not write (run as nobody: root ignores permissions), a path under a file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneeye.edge.comms.outbox import Outbox
from oneeye.edge.storage import classify, classify_os_error
from tests.mqtt_support import Subscriber, make_broker, stop_broker
from tests.net_support import free_port
from tests.storage_support import AS_NOBODY, DrivenUplink, TinyPartition
from tests.wait import wait_until


@pytest.fixture
def partition(tmp_path: Path) -> Iterator[TinyPartition]:
    p = TinyPartition(tmp_path / "data", size_kb=512)
    yield p
    p.close()


def test_disk_full_at_restart_keeps_three_missing_person_sightings_and_sends_them_later(
        partition: TinyPartition, tmp_path: Path) -> None:
    outbox = partition.mount / "outbox.sqlite3"
    broker = make_broker("amqtt", tmp_path)
    # Step 1: the broker is down; three sightings wait in the outbox when the edge stops.
    offline = DrivenUplink(f"mqtt://127.0.0.1:{broker.port}", outbox, partition=partition)
    waiting = offline.ask("submit missing 3")
    assert offline.quit()["outbox_depth"] == 3
    # Step 2: the partition fills up and the edge restarts into it.
    partition.fill()
    edge = DrivenUplink(f"mqtt://127.0.0.1:{broker.port}", outbox, partition=partition)
    storage = edge.storage()
    assert storage["state"] == "full", storage
    assert storage["path"] == str(outbox) and storage["detail"]
    listing = partition.run(["ls", str(partition.mount)]).stdout.split()
    assert "outbox.sqlite3" in listing and not [n for n in listing if "corrupt" in n]
    # It keeps recognising: a new sighting waits in memory, the process is alive.
    fresh = edge.ask("submit missing 1")
    storage = edge.storage()
    assert storage["state"] == "full" and storage["memory_events"] == 1
    # Step 3: the broker is up and space comes back: the backlog and the new one are sent.
    broker.start()
    sub = Subscriber(broker.port, "oneeye/devices/+/matches")
    try:
        partition.free()
        assert sub.wait_for(lambda s: set(waiting + fresh) <= set(s.event_ids()), 60), \
            sub.event_ids()
        assert wait_until(lambda: edge.storage()["state"] == "ok", 30, "storage ok again")
        stats = edge.quit()
    finally:
        sub.close()
        stop_broker(broker)
    assert stats["outbox_depth"] == 0
    assert edge.stderr.count("storage full") == 1, edge.stderr   # one line per transition
    assert "storage ok again after full" in edge.stderr


def test_read_only_data_partition_is_reported_and_events_are_written_once_it_is_writable(
        partition: TinyPartition, tmp_path: Path) -> None:
    outbox = partition.mount / "edge" / "outbox.sqlite3"
    partition.run(["mkdir", "-p", str(outbox.parent)])
    partition.read_only()
    edge = DrivenUplink(f"mqtt://127.0.0.1:{free_port()}", outbox, partition=partition)
    storage = edge.storage()
    assert storage["state"] == "read_only", storage
    ids = edge.ask("submit customers 2")
    assert edge.storage()["memory_events"] == 2
    partition.read_only(False)
    wait_until(lambda: edge.storage()["state"] == "ok", 30, "storage ok after remount rw")
    assert edge.storage()["memory_events"] == 0
    edge.quit()
    # The two events were written to the file when it became writable (the broker is down).
    rows = partition.run([sys.executable, "-c", f"import sqlite3; print(sqlite3.connect("
                          f"'{outbox}').execute('select event_id from outbox').fetchall())"])
    assert all(i in rows.stdout for i in ids), rows




def test_edge_on_a_read_only_data_partition_runs_to_its_end_and_reports_it(
        partition: TinyPartition, tmp_path: Path, miranda_gallery: Path, examples: Path) -> None:
    broker = make_broker("amqtt", tmp_path).start()
    health = Subscriber(broker.port, "oneeye/devices/+/health")
    partition.read_only()
    try:
        proc = partition.run(
            [sys.executable, "-m", "oneeye.cli", "edge", "--source",
             str(examples / "short_hamilton_clip.mp4"), "--gallery", str(miranda_gallery),
             "--publish", f"mqtt://127.0.0.1:{broker.port}", "--realtime", "--duration", "4"],
            env={**os.environ, "ONEEYE_EDGE__HEALTH__INTERVAL_S": "1",
                 "ONEEYE_EDGE__OUTBOX__PATH": str(partition.mount / "outbox.sqlite3")},
            cwd=tmp_path)
        reports = [json.loads(p) for p in health.payloads(1, timeout=30)]
    finally:
        health.close()
        stop_broker(broker)
    assert proc.returncode == 0, proc.stderr            # no exit, so no restart loop
    assert "storage read_only" in proc.stderr
    assert reports[0]["storage"]["outbox"]["state"] == "read_only"


def test_a_directory_the_edge_may_not_write_is_permission_denied(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)    # root's: nobody may read it but not write it
    tmp_path.chmod(0o755)
    edge = DrivenUplink(f"mqtt://127.0.0.1:{free_port()}", data / "outbox.sqlite3",
                        prefix=AS_NOBODY, env={"HOME": str(tmp_path)})
    storage = edge.storage()
    assert storage["state"] == "permission_denied", storage
    edge.ask("submit missing 1")
    assert edge.storage()["memory_events"] == 1
    edge.quit()
    assert "held in memory are lost at close" in edge.stderr   # said, not silent


def test_missing_data_directory_is_named_and_recovers_when_it_can_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "mnt"
    blocker.write_text("not a directory: the data partition is not mounted")
    box = Outbox(blocker / "edge" / "outbox.sqlite3", retry_s=0.0)
    assert box.storage.state == "missing_dir"
    seq = box.put("t", b"{}", "e-1", keep=True)
    assert seq < 0 and box.depth() == 1 and [i.event_id for i in box.peek()] == ["e-1"]
    blocker.unlink()
    assert box.retry() and box.storage.state == "ok"
    assert [i.seq > 0 for i in box.peek()] == [True]    # now on disk
    box.close()


def test_memory_bound_drops_customer_sightings_before_missing_person_ones(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "f").write_text("")
    box = Outbox(tmp_path / "f" / "outbox.sqlite3", max_memory=3, retry_s=3600)
    caplog.set_level(logging.WARNING)
    box.put("t", b"{}", "cust-1")
    box.put("t", b"{}", "miss-1", keep=True)
    box.put("t", b"{}", "cust-2")
    box.put("t", b"{}", "miss-2", keep=True)          # over the bound: cust-1 goes
    assert [i.event_id for i in box.peek()] == ["miss-1", "cust-2", "miss-2"]
    box.put("t", b"{}", "miss-3", keep=True)          # cust-2 goes, not a missing person
    assert [i.event_id for i in box.peek()] == ["miss-1", "miss-2", "miss-3"]
    box.put("t", b"{}", "miss-4", keep=True)          # nothing else left: the oldest one
    assert [i.event_id for i in box.peek()] == ["miss-2", "miss-3", "miss-4"]
    assert box.storage.memory_dropped == 3 and box.dropped == 3
    assert "nothing else was left" in caplog.text
    box.ack(box.peek()[0].seq)                        # sent from memory
    assert box.depth() == 2 and box.counter("sent") == 1


def test_only_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    bad = tmp_path / "outbox.sqlite3"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    box = Outbox(bad)
    assert box.storage.state == "ok" and box.counter("corrupt_files") == 1
    assert len(list(tmp_path.glob("outbox.sqlite3.corrupt-*"))) == 1
    box.close()


def test_sqlite_full_of_a_healthy_directory_is_full_not_corrupt(tmp_path: Path) -> None:
    # SQLITE_FULL without an OS error: the database's own page limit (max_page_count),
    # which is how SQLite reports a full disk too.
    db = sqlite3.connect(tmp_path / "x.sqlite3")
    db.execute("CREATE TABLE t (b BLOB)")
    db.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as exc:
        db.execute("INSERT INTO t VALUES (?)", (b"\0" * 100_000,))
    assert classify(exc.value, tmp_path)[0] == "full"
    not_db = sqlite3.DatabaseError("file is not a database")
    assert classify(not_db, tmp_path)[0] == "corrupt"


@pytest.mark.parametrize(("code", "state"), [
    (errno.ENOSPC, "full"), (errno.EDQUOT, "quota"), (errno.EROFS, "read_only"),
    (errno.EACCES, "permission_denied"), (errno.EPERM, "permission_denied"),
    (errno.ENOENT, "missing_dir"), (errno.EIO, "io_error"),
])
def test_os_errors_name_their_storage_state(code: int, state: str) -> None:
    # EDQUOT cannot be produced here (no quota-enabled file system without root mounts).
    assert classify_os_error(OSError(code, "x")) == state
