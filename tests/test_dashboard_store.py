"""The event store on both backends: SQLite (default) and PostgreSQL (127.0.0.1:5432/test)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from dashboard.store import Store
from oneeye.events import HealthEvent, utc_now
from oneeye.types import Clock
from tests.dashboard_helpers import desk_event
from tests.wait import ManualClock

PG = "postgresql://127.0.0.1:5432/test"


@contextmanager
def pg_store(clock: Clock = time.time) -> Iterator[Store]:
    # a private schema per test: the shared `test` database is used by other suites too
    schema = "dash_" + secrets.token_hex(6)
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        s = Store(f"{PG}?options=-csearch_path%3D{schema}&application_name={schema}",
                  clock=clock)
        try:
            yield s
        finally:
            s.close()
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'events.sqlite3'}", clock=clock)
        yield s
        s.close()
        return
    with pg_store(clock) as s:
        yield s


def test_duplicates_ignored(store: Store) -> None:
    event = desk_event()
    first = store.add_event(event)
    assert first is not None and first["event"]["customer"]["name"] == "Ada Lovelace"
    assert store.add_event(event) is None
    assert len(store.events(["branch-1"])) == 1


def test_catch_up_follows_arrival_order_even_for_late_older_ids(store: Store) -> None:
    older = desk_event(name="Late")      # created first: smaller event_id
    a = desk_event(name="A")
    b = desk_event(name="B")
    store.add_event(a)
    store.add_event(b)
    store.add_event(older)               # arrives last (an edge replaying its outbox)
    after_a = store.events(["branch-1"], after=a.event_id)
    assert [r["event_id"] for r in after_a] == [b.event_id, older.event_id]
    assert store.events(["branch-1"], after=older.event_id) == []
    # an id this store never saw: fall back to id order instead of failing
    unknown = store.events(["branch-1"], after="00000000-0000-7000-8000-000000000000")
    assert len(unknown) == 3
    newest_first = store.events(["branch-1"])
    assert newest_first[0]["event_id"] == older.event_id


def test_sites_filter_and_person_search(store: Store) -> None:
    store.add_event(desk_event(site_id="branch-1", name="Ada Lovelace", person_id="C-1"))
    store.add_event(desk_event(site_id="branch-2", name="Grace Hopper", person_id="C-2"))
    assert [r["site_id"] for r in store.events(["branch-2"])] == ["branch-2"]
    assert store.events([]) == []
    found = store.events(["branch-1", "branch-2"], person="HOPPER")
    assert [r["event"]["customer"]["name"] for r in found] == ["Grace Hopper"]
    assert store.events(["branch-1", "branch-2"], person="100%") == []


def test_acknowledgement_audit(store: Store) -> None:
    event = desk_event(kind="missing_person_sighted", person_id="MP-1", name="Tom")
    store.add_event(event)
    ack = store.acknowledge(event.event_id, "alice")
    assert store.acknowledge(event.event_id, "bob") == ack
    record = store.get_event(event.event_id)
    assert record is not None and record["ack"]["by"] == "alice"
    assert store.events(["branch-1"], unacked=True) == []


def test_retention_purge(store: Store, clock: ManualClock) -> None:
    old = desk_event(kind="missing_person_sighted", person_id="MP-9", name="Old")
    store.add_event(old)
    store.acknowledge(old.event_id, "alice")
    clock.advance(31 * 86400)
    fresh = desk_event()
    store.add_event(fresh)
    assert store.purge(30) == 1
    assert [r["event_id"] for r in store.events(["branch-1"])] == [fresh.event_id]
    # its acknowledgement went with it: the same event arriving again is open
    store.add_event(old)
    record = store.get_event(old.event_id)
    assert record is not None and record["ack"] is None


def test_device_health_is_state_and_only_transitions_are_events(store: Store) -> None:
    health = HealthEvent(device_id="cam-1", site_id="branch-1", camera_id="cam-1",
                         sent_at=utc_now(), uptime_s=5, fps=14.5)
    status = desk_event(kind="device_status", device_id="cam-1", health=health)
    assert store.device_seen(status) == "new"
    assert store.device_seen(status) == "online"          # a repeat report is an upsert
    [dev] = store.devices(["branch-1"])
    assert dev["state"] == "online" and dev["fps"] == 14.5 and dev["camera_state"] == "ok"
    assert store.events(["branch-1"]) == []               # no event row per report
    with pytest.raises(ValueError, match="device_seen"):
        store.add_event(status)
    assert store.mark_offline("cam-1") is True
    assert store.mark_offline("cam-1") is False           # recorded once, by one caller
    [dev] = store.devices(["branch-1"])
    assert dev["state"] == "offline" and dev["fps"] == 14.5
    assert store.device_seen(status) == "offline"         # the caller records device_online
    assert store.devices(["branch-2"]) == []


def test_users(store: Store) -> None:
    store.put_user("alice", "hash1", ["b1"])
    store.put_user("alice", "hash2", ["b1", "b2"])
    assert store.get_user("alice") == {"name": "alice", "password_hash": "hash2",
                                       "sites": ["b1", "b2"], "role": "teller",
                                       "agency": None}
    store.put_user("olga", "hash3", [], role="agency_officer", agency="County Police")
    assert store.get_user("olga")["role"] == "agency_officer"
    with pytest.raises(ValueError, match="needs an agency"):
        store.put_user("olga", "hash3", [], role="agency_officer")
    with pytest.raises(ValueError, match="role must be"):
        store.put_user("mallory", "hash3", [], role="root")
    assert store.get_user("nobody") is None


def test_unsupported_url() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        Store("mysql://x")


def test_postgresql_reconnects_after_losing_its_connection() -> None:
    with pg_store() as store, psycopg.connect(PG, autocommit=True) as admin:
        store.add_event(desk_event())
        # the server drops the store's session (as a restart or failover does)
        name = store.url.rsplit("application_name=", 1)[1]
        killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE application_name = %s", (name,)).fetchall()
        assert killed == [(True,)]
        assert len(store.events(["branch-1"])) == 1   # reconnected, nothing lost
        store.add_event(desk_event())
        assert len(store.events(["branch-1"])) == 2


def test_a_login_is_open_until_it_ends(store: Store) -> None:
    store.put_user("alice", "hash", ["branch-1"])
    first = store.start_login("alice")
    second = store.start_login("alice")
    assert first != second
    assert store.login_user(first) == {"name": "alice", "sites": ["branch-1"],
                                       "role": "teller", "agency": None}
    store.end_login(first)
    store.end_login(first)                  # ending twice is harmless
    assert store.login_user(first) is None
    assert store.login_user(second) == {"name": "alice", "sites": ["branch-1"],
                                       "role": "teller", "agency": None}
    assert store.login_user("never-issued") is None
    assert store.remove_user("alice") and not store.remove_user("alice")
    assert store.login_user(second) is None   # a removed user's logins end with them


def test_sqlite_database_is_private(tmp_path: Path) -> None:
    """The dashboard's database holds names, contacts and logins: owner-only (0600)."""
    import stat

    path = tmp_path / "var" / "dashboard.sqlite3"
    s = Store(f"sqlite:///{path}")
    try:
        s.add_event(desk_event())
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert path in files
        assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == \
            {p.name: "0o600" for p in files}
    finally:
        s.close()
