"""the sweep keeps how long it last took, for /metrics

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:01:24.375815
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweep_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("duration_seconds", sa.Float(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sweep_state", schema=None) as batch_op:
        batch_op.drop_column("duration_seconds")
