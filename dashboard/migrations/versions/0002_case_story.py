"""One case, one story: the agency of each sighting (an officer's scope) and a case's
status history (who closed it, when), which every desk reads.

``events.agency`` of the sightings stored before it is read from their body
(``case.agency``).

Revision ID: 0002_case_story
Revises: 0001
Create Date: 2026-02-14
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002_case_story"
down_revision = "0001"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("events", sa.Column("agency", sa.Text()))
    op.create_index("events_agency_person", "events", ["agency", "person_id"])
    op.create_table(
        "case_history",
        sa.Column("seq", _SERIAL, sa.Identity(always=True), primary_key=True),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("agency", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("by_name", sa.Text(), nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("case_history_case", "case_history", ["case_id", "seq"])
    bind = op.get_bind()
    events = sa.table("events", sa.column("event_id", sa.Text), sa.column("body", sa.Text),
                      sa.column("kind", sa.Text), sa.column("agency", sa.Text))
    rows = bind.execute(sa.select(events.c.event_id, events.c.body)
                        .where(events.c.kind == "missing_person_sighted")).all()
    for event_id, body in rows:
        try:
            agency = (json.loads(body).get("case") or {}).get("agency")
        except (ValueError, AttributeError):
            continue
        if isinstance(agency, str) and agency:
            bind.execute(events.update().where(events.c.event_id == event_id)
                         .values(agency=agency))


def downgrade() -> None:
    op.drop_index("case_history_case", table_name="case_history")
    op.drop_table("case_history")
    op.drop_index("events_agency_person", table_name="events")
    op.drop_column("events", "agency")
