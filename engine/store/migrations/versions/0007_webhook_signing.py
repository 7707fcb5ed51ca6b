"""signed webhooks: a secret per office

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # an office whose webhook was set before has no secret: its deliveries wait until the
    # webhook is set again, which makes one and shows it
    with op.batch_alter_table("opd", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("opd", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret")
