"""personal data beside the chain: case secrets, committed values, DPO users, erasure

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_secret",
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_table(
        "personal_datum",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("commitment", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("recorded_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "commitment"),
    )
    with op.batch_alter_table("personal_datum", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_personal_datum_case_id"), ["case_id"], unique=False
        )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dpo", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", engine.store.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("dpo")
    with op.batch_alter_table("personal_datum", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_personal_datum_case_id"))
    op.drop_table("personal_datum")
    op.drop_table("case_secret")
