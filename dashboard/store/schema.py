"""The dashboard database's tables: one :data:`metadata`, the same on SQLite and PostgreSQL.

This is the schema the code reads and writes; ``dashboard/migrations/versions`` is how a
database gets there (tests/test_dashboard_migrations.py checks that the two agree). Times
are stored as text in the one format (``oneeye.types.format_time``, UTC ``…Z``), so
comparing strings compares instants; login failures are epoch seconds (the throttle's
window arithmetic).
"""

from __future__ import annotations

from sqlalchemy import (
    DOUBLE_PRECISION,
    REAL,
    BigInteger,
    Column,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

#: ``seq``: arrival order (BIGINT identity on PostgreSQL, SQLite's rowid alias there).
Serial = BigInteger().with_variant(Integer(), "sqlite")

#: One row per stored desk event; ``body`` is its ``oneeye.desk/1`` JSON.
events = Table(
    "events", metadata,
    Column("seq", Serial, Identity(always=True), primary_key=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("site_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("observed_at", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    Column("person_id", Text),
    Column("person_name", Text),
    Column("body", Text, nullable=False),
    Column("device_id", Text),
    #: The agency of a missing-person sighting (``case.agency``): an officer's scope.
    Column("agency", Text),
    Index("events_site_seq", "site_id", "seq"),
    Index("events_agency_person", "agency", "person_id"),
    Index("events_received", "received_at"),
    sqlite_autoincrement=True,
)

#: Who did what, when: acknowledgements, verdicts, closed cases, photo changes, users
#: (scoped by ``dashboard.tenancy.audit_scope``).
audit = Table(
    "audit", metadata,
    Column("seq", Serial, Identity(always=True), primary_key=True),
    Column("at", Text, nullable=False),
    Column("user_name", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("site_id", Text),
    Column("detail", Text, nullable=False),
    #: The agency of an agency user's action (closing a case, managing officers); null
    #: for the bank's. Bank admins never see agency rows, agency admins only their own.
    Column("agency", Text),
    Index("audit_at", "at"),
    sqlite_autoincrement=True,
)

#: The first acknowledgement of an event (later ones are ignored).
acks = Table(
    "acks", metadata,
    Column("event_id", Text, primary_key=True),
    Column("user_name", Text, nullable=False),
    Column("acked_at", Text, nullable=False),
)

#: One row per device: its last health report and online/offline state.
devices = Table(
    "devices", metadata,
    Column("device_id", Text, primary_key=True),
    Column("site_id", Text, nullable=False),
    Column("last_seen", Text, nullable=False),
    Column("fps", REAL),
    Column("camera_state", Text),
    Column("state", Text, nullable=False),
    Column("health", Text),
    #: ``observed_at`` of the cloud's transition that set ``state`` (null before the first):
    #: an older transition arriving late (SNS keeps no order) changes nothing
    Column("state_at", Text),
)

#: ``user_id`` is the account's immutable key (a new account given an old name gets a new
#: one); ``name`` is the unique login name. ``sites`` is a JSON list of site ids;
#: ``agency`` the id of an agency user's agency (the cloud's agencies record,
#: ``oneeye.cloud.backoffice.Backoffice.agencies``). ``stamp`` is the credential stamp: a
#: new random value at every password, role or site change, so logins made before it end.
users = Table(
    "users", metadata,
    Column("user_id", Text, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("sites", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("role", Text, nullable=False, server_default="teller"),
    Column("agency", Text),
    Column("stamp", Text, nullable=False),
)

#: One row per login: the signed session cookie names its login_id, so logout can
#: revoke a cookie that was copied before (cookie sessions alone cannot). A login is
#: valid while it has not ended and its ``stamp`` is still its user's (by ``user_id``).
logins = Table(
    "logins", metadata,
    Column("login_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("stamp", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("ended_at", Text),
    Index("logins_user", "user_id"),
)

#: Failed logins per throttle key ("user:alice", "ip:10.0.0.5"), shared by every
#: dashboard process on this database (dashboard.throttle).
login_failures = Table(
    "login_failures", metadata,
    Column("throttle_key", Text, nullable=False),
    Column("failed_at", DOUBLE_PRECISION, nullable=False),
    Index("login_failures_key", "throttle_key", "failed_at"),
)

#: Every event id ever stored, kept much longer than the events themselves: a replay
#: of a purged event must still be a duplicate, not a new unacknowledged banner.
seen_events = Table(
    "seen_events", metadata,
    Column("event_id", Text, primary_key=True),
    Column("received_at", Text, nullable=False),
    Index("seen_events_received", "received_at"),
)

#: The latest verdict per event; every verdict given is also an audit row.
feedback = Table(
    "feedback", metadata,
    Column("event_id", Text, primary_key=True),
    Column("verdict", Text, nullable=False),
    Column("user_name", Text, nullable=False),
    Column("given_at", Text, nullable=False),
)

#: A case's status changes as the dashboard saw them (pending → open → closed): who and
#: when. The cloud case record keeps only the latest (``status``, ``closed_at``,
#: ``closed_by``); the desks read a case's closed state from here.
case_history = Table(
    "case_history", metadata,
    Column("seq", Serial, Identity(always=True), primary_key=True),
    Column("case_id", Text, nullable=False),
    Column("agency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("by_name", Text, nullable=False),
    Column("at", Text, nullable=False),
    Index("case_history_case", "case_id", "seq"),
    sqlite_autoincrement=True,
)

#: One row per visit someone decided on (a verdict) or closed (served): a card or banner
#: groups sightings of one person at one site (``dashboard.alerts.group_visits``), and
#: the decision belongs to that group, not to one event. ``visit_id`` is the visit's
#: first event id; ``last_at`` follows the visit as later sightings join it, so a
#: sighting that arrives after the verdict inherits it (``Visits.join``).
visits = Table(
    "visits", metadata,
    Column("visit_id", Text, primary_key=True),
    Column("site_id", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("first_at", Text, nullable=False),
    Column("last_at", Text, nullable=False),
    Column("verdict", Text),
    Column("verdict_by", Text),
    Column("verdict_at", Text),
    Column("served_by", Text),
    Column("served_at", Text),
    Index("visits_person", "site_id", "person_id", "last_at"),
)
