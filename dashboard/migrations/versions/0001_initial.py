"""The schema of the hand-written store (before Alembic), created or adopted in place.

A database made by that store has these tables but no ``alembic_version``: every table
and index is created only if absent (``IF NOT EXISTS``, as that store did at each start),
and the three columns it added after its first release (``_ADDED``: ``users.role``,
``users.agency``, ``events.device_id``) are added where missing. Its rows stay.

Revision ID: 0001
Revises:
Create Date: 2026-01-31
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: ``seq``: BIGINT identity on PostgreSQL, INTEGER PRIMARY KEY AUTOINCREMENT on SQLite.
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: Added by the old store after its first release: (table, column).
_ADDED = [("users", sa.Column("role", sa.Text(), nullable=False, server_default="teller")),
          ("users", sa.Column("agency", sa.Text())),
          ("events", sa.Column("device_id", sa.Text()))]


def upgrade() -> None:
    text = sa.Text
    op.create_table(
        "events",
        sa.Column("seq", _SERIAL, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", text(), nullable=False, unique=True),
        sa.Column("site_id", text(), nullable=False),
        sa.Column("kind", text(), nullable=False),
        sa.Column("observed_at", text(), nullable=False),
        sa.Column("received_at", text(), nullable=False),
        sa.Column("person_id", text()),
        sa.Column("person_name", text()),
        sa.Column("body", text(), nullable=False),
        sa.Column("device_id", text()),
        sqlite_autoincrement=True, if_not_exists=True)
    op.create_table(
        "audit",
        sa.Column("seq", _SERIAL, sa.Identity(always=True), primary_key=True),
        sa.Column("at", text(), nullable=False),
        sa.Column("user_name", text(), nullable=False),
        sa.Column("action", text(), nullable=False),
        sa.Column("target", text(), nullable=False),
        sa.Column("site_id", text()),
        sa.Column("detail", text(), nullable=False),
        sqlite_autoincrement=True, if_not_exists=True)
    op.create_table(
        "acks",
        sa.Column("event_id", text(), primary_key=True),
        sa.Column("user_name", text(), nullable=False),
        sa.Column("acked_at", text(), nullable=False), if_not_exists=True)
    op.create_table(
        "devices",
        sa.Column("device_id", text(), primary_key=True),
        sa.Column("site_id", text(), nullable=False),
        sa.Column("last_seen", text(), nullable=False),
        sa.Column("fps", sa.REAL()),
        sa.Column("camera_state", text()),
        sa.Column("state", text(), nullable=False),
        sa.Column("health", text()), if_not_exists=True)
    op.create_table(
        "users",
        sa.Column("name", text(), primary_key=True),
        sa.Column("password_hash", text(), nullable=False),
        sa.Column("sites", text(), nullable=False),
        sa.Column("created_at", text(), nullable=False),
        sa.Column("role", text(), nullable=False, server_default="teller"),
        sa.Column("agency", text()), if_not_exists=True)
    op.create_table(
        "logins",
        sa.Column("login_id", text(), primary_key=True),
        sa.Column("user_name", text(), nullable=False),
        sa.Column("started_at", text(), nullable=False),
        sa.Column("ended_at", text()), if_not_exists=True)
    op.create_table(
        "login_failures",
        sa.Column("throttle_key", text(), nullable=False),
        sa.Column("failed_at", sa.DOUBLE_PRECISION(), nullable=False), if_not_exists=True)
    op.create_table(
        "seen_events",
        sa.Column("event_id", text(), primary_key=True),
        sa.Column("received_at", text(), nullable=False), if_not_exists=True)
    op.create_table(
        "feedback",
        sa.Column("event_id", text(), primary_key=True),
        sa.Column("verdict", text(), nullable=False),
        sa.Column("user_name", text(), nullable=False),
        sa.Column("given_at", text(), nullable=False), if_not_exists=True)
    have = sa.inspect(op.get_bind())
    for table, column in _ADDED:
        if column.name not in {c["name"] for c in have.get_columns(table)}:
            op.add_column(table, column)
    for name, table, columns in [
            ("login_failures_key", "login_failures", ["throttle_key", "failed_at"]),
            ("seen_events_received", "seen_events", ["received_at"]),
            ("events_site_seq", "events", ["site_id", "seq"]),
            ("events_received", "events", ["received_at"]),
            ("audit_at", "audit", ["at"])]:
        op.create_index(name, table, columns, if_not_exists=True)


def downgrade() -> None:
    for table in ("feedback", "seen_events", "login_failures", "logins", "users", "devices",
                  "acks", "audit", "events"):
        op.drop_table(table)
