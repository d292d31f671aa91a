"""Alembic's environment for the dashboard database: online only, on a lent connection.

:func:`dashboard.store.upgrade` puts an open connection (inside a transaction) in
``config.attributes["connection"]``; there is no URL and no logging setup here (the
``oneeye`` CLI owns logging). On PostgreSQL a transaction-scoped advisory lock makes
dashboard processes that start together migrate one after the other.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dashboard.store.schema import metadata

#: pg_advisory_xact_lock key: "oneeye-dashboard-migrate", any fixed 64-bit number works.
MIGRATION_LOCK = 0x0E1E_DA5B


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("the dashboard migrates through dashboard.store.upgrade(engine), "
                           "which lends its connection; there is no alembic.ini")
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
