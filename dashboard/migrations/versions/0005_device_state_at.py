"""When the cloud made a device's current state: ``devices.state_at``.

The cloud sends each online/offline transition once, stamped with the moment it made it
(``observed_at``), but SNS does not keep order: a ``device_offline`` retried by SNS can
arrive after the ``device_online`` that followed it. The desk applies a transition only
if it is newer than ``state_at`` (null for rows made before: the next transition wins).

Revision ID: 0005_device_state_at
Revises: 0004_user_ids
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_device_state_at"
down_revision = "0004_user_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("state_at", sa.Text()))


def downgrade() -> None:
    op.drop_column("devices", "state_at")
