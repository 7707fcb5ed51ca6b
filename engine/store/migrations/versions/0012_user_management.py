"""users managed: disabled users, token issue and expiry instants

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_COLUMNS = ("token_issued_at", "token_expires_at", "disabled_at")


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(
                sa.Column(name, engine.store.types.UTCDateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
