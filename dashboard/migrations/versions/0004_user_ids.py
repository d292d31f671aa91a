"""Users keyed by an immutable id with a credential stamp; logins by user id; audit rows
that name an agency.

- ``users``: new ``user_id`` (primary key, a UUIDv7 given to each existing row) and
  ``stamp`` (a random credential stamp); ``name`` stays unique. A login is valid only
  while its stamp is its user's, so a password, role or site change ends it, and a new
  account given an old name (a new ``user_id``) never revives an old cookie.
- ``logins``: ``user_name`` is replaced by ``user_id`` + ``stamp``; open logins stay open,
  bound to their user's id and new stamp (those of removed users are dropped).
- ``audit``: new ``agency`` (null for the bank's rows), the tenancy of agency actions.

Revision ID: 0004_user_ids
Revises: 0003_visits
Create Date: 2026-02-14
"""

from __future__ import annotations

import secrets
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004_user_ids"
down_revision = "0003_visits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("users", sa.Column("user_id", sa.Text()))
    op.add_column("users", sa.Column("stamp", sa.Text()))
    users = sa.table("users", sa.column("name", sa.Text()), sa.column("user_id", sa.Text()),
                     sa.column("stamp", sa.Text()))
    for (name,) in bind.execute(sa.select(users.c.name)).all():
        # uuid4 here: ids only need to be unique and immutable (oneeye.ids is not for
        # migrations, which must not change when that module does)
        bind.execute(users.update().where(users.c.name == name).values(
            user_id=str(uuid.uuid4()), stamp=secrets.token_urlsafe(16)))
    _rekey_users(bind.dialect.name)

    op.create_table(
        "logins_by_id",
        sa.Column("login_id", sa.Text(), primary_key=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("stamp", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.Text()))
    # open logins stay open, bound to their user's id and current stamp; logins of users
    # that no longer exist were refused already and are dropped
    op.execute("INSERT INTO logins_by_id (login_id, user_id, stamp, started_at, ended_at) "
               "SELECT l.login_id, u.user_id, u.stamp, l.started_at, l.ended_at "
               "FROM logins l JOIN users u ON u.name = l.user_name")
    op.drop_table("logins")
    op.rename_table("logins_by_id", "logins")
    op.create_index("logins_user", "logins", ["user_id"])
    op.add_column("audit", sa.Column("agency", sa.Text()))


def _rekey_users(dialect: str) -> None:
    """Primary key ``name`` → ``user_id``, with ``name`` unique.

    SQLite cannot change a primary key in place, so the table is rebuilt with the
    schema's shape and its rows copied; PostgreSQL swaps the constraints.
    """
    if dialect == "sqlite":
        op.execute("ALTER TABLE users RENAME TO users_old")
        op.create_table(
            "users",
            sa.Column("user_id", sa.Text(), primary_key=True),
            sa.Column("name", sa.Text(), nullable=False, unique=True),
            sa.Column("password_hash", sa.Text(), nullable=False),
            sa.Column("sites", sa.Text(), nullable=False),
            sa.Column("created_at", sa.Text(), nullable=False),
            sa.Column("role", sa.Text(), nullable=False, server_default="teller"),
            sa.Column("agency", sa.Text()),
            sa.Column("stamp", sa.Text(), nullable=False))
        op.execute("INSERT INTO users (user_id, name, password_hash, sites, created_at, role, "
                   "agency, stamp) SELECT user_id, name, password_hash, sites, created_at, "
                   "role, agency, stamp FROM users_old")
        op.drop_table("users_old")
        return
    op.alter_column("users", "user_id", nullable=False)
    op.alter_column("users", "stamp", nullable=False)
    op.drop_constraint("users_pkey", "users", type_="primary")
    op.create_primary_key("users_pkey", "users", ["user_id"])
    op.create_unique_constraint("users_name_key", "users", ["name"])


def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: logins and user ids would be lost")
