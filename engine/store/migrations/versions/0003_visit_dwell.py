"""step visits keep how long they lasted, in wall-clock and working time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:19:29.336344
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step_visit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dwell_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("working_seconds", sa.Float(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_step_visit_sop_step"))
        batch_op.create_index(
            "ix_step_visit_sop_step_entered", ["sop", "step", "entered_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("step_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_step_visit_sop_step_entered")
        batch_op.create_index(batch_op.f("ix_step_visit_sop_step"), ["sop", "step"], unique=False)
        batch_op.drop_column("working_seconds")
        batch_op.drop_column("dwell_seconds")
