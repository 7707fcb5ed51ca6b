"""the calendar register: decreed days off, days made working again, Ramadan, office zones

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("first", sa.Date(), nullable=False),
        sa.Column("last", sa.Date(), nullable=False),
        sa.Column("opd", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("cuti_bersama", sa.Boolean(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("created_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["opd"], ["opd.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calendar_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_entry_first"), ["first"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_entry_opd"), ["opd"], unique=False)
    op.create_table(
        "calendar_zone",
        sa.Column("opd", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("set_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["opd"], ["opd.id"]),
        sa.PrimaryKeyConstraint("opd"),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("calendar_admin", sa.Boolean(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deadline_estimated", sa.Boolean(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.drop_column("deadline_estimated")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("calendar_admin")
    op.drop_table("calendar_zone")
    with op.batch_alter_table("calendar_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_entry_opd"))
        batch_op.drop_index(batch_op.f("ix_calendar_entry_first"))
    op.drop_table("calendar_entry")
