"""The dashboard's store on both backends: every test runs on SQLite (the default) and on
PostgreSQL (127.0.0.1:5432; skipped where absent), through the ``store`` fixture."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from dashboard.store import Store, open_store
from oneeye.errors import NameTaken
from oneeye.events import HealthEvent, utc_now
from tests.dashboard_helpers import desk_event
from tests.store_support import pg_schema
from tests.wait import ManualClock


def test_duplicates_ignored(store: Store) -> None:
    event = desk_event()
    first = store.events.add(event)
    assert first is not None and first["event"]["customer"]["name"] == "Ada Lovelace"
    assert store.events.add(event) is None
    assert len(store.events.find(["branch-1"])) == 1


def test_an_event_another_process_stored_meanwhile_is_not_stored_or_pushed_twice(
        store: Store) -> None:
    """Two dashboard processes store one SNS message at once: both pass the ``seen``
    check, the unique event id lets one insert in, and the other must learn that from
    the insert's rowcount (on PostgreSQL, SQLAlchemy reports it only when preserved)."""
    from dashboard.store.schema import seen_events

    event = desk_event()
    assert store.events.add(event) is not None
    with store.engine.begin() as conn:          # the other process's view: not seen yet
        conn.execute(seen_events.delete())
    assert store.events.add(event) is None
    assert len(store.events.find(["branch-1"])) == 1


def test_catch_up_follows_arrival_order_even_for_late_older_ids(store: Store) -> None:
    older = desk_event(name="Late")      # created first: smaller event_id
    a = desk_event(name="A")
    b = desk_event(name="B")
    store.events.add(a)
    store.events.add(b)
    store.events.add(older)               # arrives last (an edge replaying its outbox)
    after_a = store.events.find(["branch-1"], after=a.event_id)
    assert [r["event_id"] for r in after_a] == [b.event_id, older.event_id]
    assert store.events.find(["branch-1"], after=older.event_id) == []
    # an id this store never saw: fall back to id order instead of failing
    unknown = store.events.find(["branch-1"], after="00000000-0000-7000-8000-000000000000")
    assert len(unknown) == 3
    newest_first = store.events.find(["branch-1"])
    assert newest_first[0]["event_id"] == older.event_id


def test_sites_filter_and_person_search(store: Store) -> None:
    store.events.add(desk_event(site_id="branch-1", name="Ada Lovelace", person_id="C-1"))
    store.events.add(desk_event(site_id="branch-2", name="Grace Hopper", person_id="C-2"))
    assert [r["site_id"] for r in store.events.find(["branch-2"])] == ["branch-2"]
    assert store.events.find([]) == []
    found = store.events.find(["branch-1", "branch-2"], person="HOPPER")
    assert [r["event"]["customer"]["name"] for r in found] == ["Grace Hopper"]
    assert store.events.find(["branch-1", "branch-2"], person="100%") == []


def test_acknowledgement_audit(store: Store) -> None:
    event = desk_event(kind="missing_person_sighted", person_id="MP-1", name="Tom")
    store.events.add(event)
    ack = store.alerts.acknowledge(event.event_id, "alice")
    assert store.alerts.acknowledge(event.event_id, "bob") == ack
    record = store.events.get(event.event_id)
    assert record is not None and record["ack"]["by"] == "alice"
    assert store.events.find(["branch-1"], unacked=True) == []


def test_retention_purge(store: Store, clock: ManualClock) -> None:
    old = desk_event(kind="missing_person_sighted", person_id="MP-9", name="Old")
    store.events.add(old)
    store.alerts.acknowledge(old.event_id, "alice")
    clock.advance(31 * 86400)
    fresh = desk_event()
    store.events.add(fresh)
    assert store.purge(30) == 1
    assert [r["event_id"] for r in store.events.find(["branch-1"])] == [fresh.event_id]
    # its acknowledgement went with it: the same event arriving again is open
    store.events.add(old)
    record = store.events.get(old.event_id)
    assert record is not None and record["ack"] is None


def test_device_reports_update_figures_and_only_cloud_transitions_set_state(store: Store) -> None:
    health = HealthEvent(device_id="cam-1", site_id="branch-1", camera_id="cam-1",
                         sent_at=utc_now(), uptime_s=5, fps=14.5)
    status = desk_event(kind="device_status", device_id="cam-1", health=health)
    assert store.devices.seen(status) == "new"
    assert store.devices.seen(status) == "online"          # a repeat report is an upsert
    [dev] = store.devices.of_sites(["branch-1"])
    assert dev["state"] == "online" and dev["fps"] == 14.5 and dev["camera_state"] == "ok"
    assert store.events.find(["branch-1"]) == []               # no event row per report
    with pytest.raises(ValueError, match="device_status updates a device"):
        store.events.add(status)
    offline = desk_event(kind="device_offline", device_id="cam-1")
    assert store.devices.set_state(offline, "offline") is True       # the cloud's transition
    assert store.devices.set_state(offline, "offline") is False      # applied once
    [dev] = store.devices.of_sites(["branch-1"])
    assert dev["state"] == "offline" and dev["fps"] == 14.5
    assert store.devices.seen(status) == "offline"   # a report changes figures, not the state
    [dev] = store.devices.of_sites(["branch-1"])
    assert dev["state"] == "offline"
    other = desk_event(kind="device_online", device_id="cam-9")
    assert store.devices.set_state(other, "online") is True   # a device first named by a transition
    assert store.devices.of_sites(["branch-2"]) == []


def test_users_are_created_once_edited_and_reset_by_id(store: Store) -> None:
    alice = store.users.create("alice", "hash1", ["b1"])
    with pytest.raises(NameTaken):                   # create never replaces: no takeover
        store.users.create("alice", "hash2", ["b1", "b2"])
    assert store.users.get("alice") == {"user_id": alice, "name": "alice",
                                       "password_hash": "hash1", "sites": ["b1"],
                                       "role": "teller", "agency": None,
                                       "stamp": store.users.get("alice")["stamp"]}
    assert store.users.edit(alice, sites=["b1", "b2"], role="teller") == []
    assert store.users.by_id(alice)["sites"] == ["b1", "b2"]
    assert store.users.set_password(alice, "hash2") == []
    assert store.users.get("alice")["password_hash"] == "hash2"
    store.users.create("olga", "hash3", [], role="agency_officer", agency="County Police")
    assert store.users.get("olga")["role"] == "agency_officer"
    with pytest.raises(ValueError, match="needs an agency"):
        store.users.create("olga2", "hash3", [], role="agency_officer")
    with pytest.raises(ValueError, match="no sites"):
        store.users.create("olga3", "hash3", ["b1"], role="agency_admin", agency="County Police")
    with pytest.raises(ValueError, match="only agency users"):
        store.users.create("tim", "hash3", ["b1"], agency="County Police")
    with pytest.raises(ValueError, match="role must be"):
        store.users.create("mallory", "hash3", [], role="root")
    assert store.users.get("nobody") is None
    assert store.users.edit("no-such-id", sites=["b1"], role="teller") is None
    assert store.users.set_password("no-such-id", "h") is None


def test_a_change_to_the_account_ends_its_logins_and_a_new_account_never_revives_them(
        store: Store) -> None:
    alice = store.users.create("alice", "hash", ["b1"])
    login = store.logins.start(alice, store.users.get("alice")["stamp"])
    assert store.users.edit(alice, sites=["b1"], role="teller") == []   # no change: stays
    assert store.logins.user(login) is not None
    assert store.users.edit(alice, sites=["b2"], role="teller") == [login]
    assert store.logins.user(login) is None
    login = store.logins.start(alice, store.users.get("alice")["stamp"])
    assert store.users.set_password(alice, "hash2") == [login]
    assert store.logins.user(login) is None
    login = store.logins.start(alice, store.users.get("alice")["stamp"])
    assert store.logins.valid([login, "never-issued"]) == {login}
    assert store.users.remove(alice) == [login] and store.users.remove(alice) is None
    again = store.users.create("alice", "hash", ["b1"])
    assert again != alice
    assert store.logins.user(login) is None and store.logins.valid([login]) == set()


@pytest.mark.parametrize("url", ["mysql://x", "postgresql+asyncpg://x/y", "not a url"])
def test_unsupported_url(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        open_store(url)


def test_postgresql_reconnects_after_losing_its_connection(pg_database: str) -> None:
    with pg_schema(pg_database) as url, psycopg.connect(pg_database, autocommit=True) as admin:
        store = open_store(url)
        try:
            store.events.add(desk_event())
            # the server drops the store's sessions (as a restart or failover does)
            name = url.rsplit("application_name=", 1)[1]
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE application_name = %s", (name,)).fetchall()
            assert killed and all(ok for (ok,) in killed)
            assert len(store.events.find(["branch-1"])) == 1   # reconnected, nothing lost
            store.events.add(desk_event())
            assert len(store.events.find(["branch-1"])) == 2
        finally:
            store.close()


def test_a_login_is_open_until_it_ends(store: Store) -> None:
    alice = store.users.create("alice", "hash", ["branch-1"])
    stamp = store.users.get("alice")["stamp"]
    first = store.logins.start(alice, stamp)
    second = store.logins.start(alice, stamp)
    assert first != second
    assert store.logins.user(first) == {"user_id": alice, "name": "alice",
                                       "sites": ["branch-1"], "role": "teller", "agency": None}
    store.logins.end(first)
    store.logins.end(first)                  # ending twice is harmless
    assert store.logins.user(first) is None
    assert store.logins.user(second) == {"user_id": alice, "name": "alice",
                                        "sites": ["branch-1"], "role": "teller", "agency": None}
    assert store.logins.user("never-issued") is None
    assert store.users.remove(alice) == [second] and store.users.remove(alice) is None
    assert store.logins.user(second) is None   # a removed user's logins end with them


def test_sqlite_database_is_private(tmp_path: Path) -> None:
    """The dashboard's database holds names, contacts and logins: owner-only (0600)."""
    path = tmp_path / "var" / "dashboard.sqlite3"
    s = open_store(f"sqlite:///{path}")
    try:
        s.events.add(desk_event())
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert path in files
        assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == \
            {p.name: "0o600" for p in files}
    finally:
        s.close()


def test_the_latest_verdict_counts_and_rejections_are_counted_per_camera(store: Store) -> None:
    event = desk_event(kind="missing_person_sighted", person_id="MP-1", name="Tom")
    store.events.add(event)
    store.verdicts.give(event.event_id, "confirmed", "alice")
    given = store.verdicts.give(event.event_id, "rejected", "bob")      # replaces the first
    record = store.events.get(event.event_id)
    assert record is not None and record["feedback"] == {
        "verdict": "rejected", "by": "bob", "at": given["at"]}
    assert store.verdicts.rejection_counts(["branch-1"]) == [
        {"site_id": "branch-1", "camera_id": "cam-door-1", "watchlist": "missing",
         "confirmed": 0, "rejected": 1}]
    assert store.verdicts.rejection_counts(["branch-2"]) == []


def test_audit_rows_newest_first_by_site_and_user(store: Store) -> None:
    store.audit.add("alice", "acknowledged", "e-1", site_id="branch-1", kind="x")
    store.audit.add("ada", "user_saved", "tom", sites=["branch-1"])     # no site: everyone's
    store.audit.add("bob", "acknowledged", "e-2", site_id="branch-2")
    assert [r["target"] for r in store.audit.rows(sites=["branch-1"])] == ["tom", "e-1"]
    [row] = store.audit.rows(user="alice")
    assert row["detail"] == {"kind": "x"} and row["site_id"] == "branch-1"
    assert [r["target"] for r in store.audit.rows(sites=[])] == ["tom"]
    assert len(store.audit.rows(limit=2)) == 2


def test_login_failures_slide_out_of_the_window_per_key(store: Store) -> None:
    failures = store.login_failures
    failures.add("user:alice", 1000.0, window_s=300)
    failures.add("user:alice", 1100.0, window_s=300)
    failures.add("ip:10.0.0.5", 1100.0, window_s=300)
    assert failures.count("user:alice", since=900) == 2
    assert failures.count("user:alice", since=1050) == 1
    failures.add("user:alice", 1400.0, window_s=300)   # 1000 is out of this window: dropped
    assert failures.count("user:alice", since=0) == 2
    failures.clear("user:alice")
    assert failures.count("user:alice", since=0) == 0
    assert failures.count("ip:10.0.0.5", since=0) == 1  # another key is untouched


def test_sites_name_every_site_of_a_user_or_a_device(store: Store) -> None:
    store.users.create("alice", "hash", ["branch-1", "branch-2"])
    store.users.create("bob", "hash", ["branch-2"])
    health = HealthEvent(device_id="cam-9", site_id="branch-3", camera_id="cam-9",
                         sent_at=utc_now(), uptime_s=5, fps=10.0)
    store.devices.seen(desk_event(site_id="branch-3", kind="device_status", device_id="cam-9",
                                  health=health))
    assert store.sites() == [{"site_id": "branch-1", "devices": 0, "users": 1},
                             {"site_id": "branch-2", "devices": 0, "users": 2},
                             {"site_id": "branch-3", "devices": 1, "users": 0}]


def test_purge_ends_old_logins_and_old_failures_too(store: Store, clock: ManualClock) -> None:
    alice = store.users.create("alice", "hash", ["branch-1"])
    stamp = store.users.get("alice")["stamp"]
    ended, still_open = store.logins.start(alice, stamp), store.logins.start(alice, stamp)
    store.logins.end(ended)
    store.login_failures.add("user:alice", clock(), window_s=300)
    clock.advance(31 * 86400)
    store.purge(30)
    assert store.logins.user(still_open) is not None      # an open login is never purged
    assert store.login_failures.count("user:alice", since=0) == 0
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM logins")).scalar_one() == 1


def test_a_group_acknowledgement_takes_only_open_alerts_up_to_what_was_seen(
        store: Store, clock: ManualClock) -> None:
    first, second, later = (desk_event(kind="missing_person_sighted", person_id="MP-2",
                                       name="Tom") for _ in range(3))
    records = [store.events.add(e) for e in (first, second, later)]
    store.alerts.acknowledge(first.event_id, "bob")                 # already closed
    clock.advance(60)
    upto = records[1]["seq"] if records[1] else 0
    acked = store.alerts.acknowledge_group(["branch-1"], "missing_person_sighted", "MP-2",
                                           upto, "alice")
    assert [a["event_id"] for a in acked] == [second.event_id]
    assert [r["event_id"] for r in store.alerts.open(["branch-1"])] == [later.event_id]
    assert store.alerts.last_acks(["branch-1"], ["MP-2"]) == {
        "MP-2": {"by": "alice", "at": acked[0]["at"]}}                # the latest one
    assert store.alerts.acknowledge_group(["branch-1"], "customer_arrived", "MP-2", upto,
                                          "alice") == []            # not an alert kind
