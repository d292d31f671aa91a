"""The dashboard database's migrations (``dashboard/migrations``), on SQLite and PostgreSQL.

A database made by the hand-written store (before SQLAlchemy and Alembic; its schema and
rows in ``tests/store_support.py``) is adopted in place by revision 0001 and keeps every
row; so is one of that store's first release, before it added three columns at start.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Float, inspect, text
from sqlalchemy.engine import Connection

from dashboard.store import current_revision, head_revision, make_engine, open_store
from dashboard.store.schema import metadata
from oneeye.types import is_id
from tests.dashboard_helpers import desk_event
from tests.store_support import LEGACY_ROWS, make_legacy_database

SIGHTING = "0190a1b2-0000-7000-8000-000000000001"
ARRIVAL = "0190a1b2-0000-7000-8000-000000000002"


def schema_diff(conn: Connection) -> list[Any]:
    """Alembic's differences between the database and :mod:`dashboard.store.schema`, less
    two things SQLite itself does: it reflects DOUBLE PRECISION as REAL (one float type
    there), and a non-INTEGER ``PRIMARY KEY`` accepts NULL unless declared NOT NULL (the
    hand-written store's tables did not say it; every insert names its key)."""
    diff = compare_metadata(MigrationContext.configure(conn), metadata)
    if conn.dialect.name != "sqlite":
        return diff

    def artefact(op: tuple[Any, ...]) -> bool:
        if op[0] == "modify_type":
            return isinstance(op[5], Float) and isinstance(op[6], Float)
        if op[0] == "modify_nullable":
            return bool(metadata.tables[op[2]].c[op[3]].primary_key) and op[5] and not op[6]
        return False

    return [d for d in diff if not (isinstance(d, list) and all(map(artefact, d)))]


def test_a_new_database_is_created_at_the_newest_revision(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    with closing(open_store(database_url)) as store:
        assert current_revision(store.engine) == head_revision()
        assert set(inspect(store.engine).get_table_names()) == {
            *metadata.tables, "alembic_version"}
    engine.dispose()


def test_the_migrations_build_exactly_the_schema_the_code_uses(database_url: str) -> None:
    with closing(open_store(database_url)) as store, store.engine.connect() as conn:
        assert schema_diff(conn) == []


def test_a_database_of_the_hand_written_store_upgrades_in_place_with_its_rows(
        database_url: str) -> None:
    make_legacy_database(database_url)
    with closing(open_store(database_url)) as store:
        assert current_revision(store.engine) == head_revision()
        sighting = store.events.get(SIGHTING)
        assert sighting is not None and sighting["seq"] == 1
        assert sighting["ack"] == {"by": "alice", "at": "2026-01-30T10:01:00.000Z"}
        arrival = store.events.get(ARRIVAL)
        assert arrival is not None and arrival["feedback"]["verdict"] == "rejected"
        ada = store.users.get("ada")
        assert ada is not None and is_id(ada.pop("user_id")) and ada.pop("stamp")
        assert ada == {"name": "ada", "password_hash": "argon2-hash", "sites": ["branch-1"],
                       "role": "branch_admin", "agency": None}
        assert store.logins.user("login-1") is not None          # her open login still works
        [device] = store.devices.of_sites(["branch-1"])
        assert device["device_id"] == "cam-1" and device["fps"] == 14.5
        [row] = store.audit.rows(user="alice")
        assert row["detail"] == {"kind": "missing_person_sighted"}
        assert store.login_failures.count("user:mallory", 0) == 1
        assert store.verdicts.rejection_counts(["branch-1"])[0]["rejected"] == 1
        # the old ids are still known (a replay is a duplicate), and new rows follow on
        assert store.events.find(["branch-1"], kinds=["missing_person_sighted"],
                                 unacked=True) == []
        with store.engine.connect() as conn:
            tables = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                      for t in ("events", "seen_events", "acks", "feedback", "users",
                                "devices", "logins", "audit", "login_failures")}
        inserted = {t: sum(1 for sql, _ in LEGACY_ROWS if f"INTO {t} " in sql) for t in tables}
        assert tables == inserted


def test_new_rows_continue_the_adopted_sequences(database_url: str) -> None:
    make_legacy_database(database_url)
    with closing(open_store(database_url)) as store:
        record = store.events.add(desk_event())
        assert record is not None and record["seq"] == 3      # after the two old events
        store.audit.add("ada", "user_saved", "tom")
        assert [r["seq"] for r in store.audit.rows()] == [2, 1]


def test_a_first_release_database_gets_the_columns_added_since(database_url: str) -> None:
    """Before ``users.role``, ``users.agency`` and ``events.device_id``: the old store added
    them at start; revision 0001 does, and an existing user is a teller."""
    make_legacy_database(database_url, added=False)
    with closing(open_store(database_url)) as store:
        user = store.users.get("ada")
        assert user is not None and user["role"] == "teller" and user["agency"] is None
        assert store.events.get(SIGHTING) is not None
        with store.engine.connect() as conn:
            assert schema_diff(conn) == []


def test_every_start_migrates_and_a_migrated_database_is_left_as_it_is(
        database_url: str) -> None:
    make_legacy_database(database_url)
    open_store(database_url).close()
    again = open_store(database_url)                  # the second start: nothing to do
    try:
        assert current_revision(again.engine) == head_revision()
        assert len(again.events.find(["branch-1"])) == 2
    finally:
        again.close()


def test_the_schema_check_sees_a_database_that_drifted(database_url: str) -> None:
    with closing(open_store(database_url)) as store:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE devices DROP COLUMN health"))
        with store.engine.connect() as conn:
            diff = schema_diff(conn)
        assert [(op[0], op[2], op[3].name) for op in diff] == [
            ("add_column", "devices", "health")]
