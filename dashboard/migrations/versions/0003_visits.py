"""Visits: a verdict or "served" per visit (card or banner), not per event.

Revision ID: 0003_visits
Revises: 0002_case_story
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_visits"
down_revision = "0002_case_story"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("visit_id", sa.Text(), primary_key=True),
        sa.Column("site_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("first_at", sa.Text(), nullable=False),
        sa.Column("last_at", sa.Text(), nullable=False),
        sa.Column("verdict", sa.Text()),
        sa.Column("verdict_by", sa.Text()),
        sa.Column("verdict_at", sa.Text()),
        sa.Column("served_by", sa.Text()),
        sa.Column("served_at", sa.Text()),
    )
    op.create_index("visits_person", "visits", ["site_id", "person_id", "last_at"])


def downgrade() -> None:
    op.drop_index("visits_person", table_name="visits")
    op.drop_table("visits")
