"""each case event keeps the case's version beside the chain (outside the hash)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (no batch copy): the append-only triggers stay as they are
    op.add_column("audit_event", sa.Column("case_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_event", "case_version")
