"""levies billed per case, lawful charges, deemed approval

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bill",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("waiver", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("billed_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("billed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["case_pk"], ["sop_case.pk"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bill", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bill_case_pk"), ["case_pk"], unique=False)
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fee_paid", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("bill", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "deemed_approved_at", engine.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "decision_due_at", engine.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    # every payment so far paid the fee: no payment named a charge before
    op.execute("UPDATE sop_case SET fee_paid = paid_total")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("charge", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_column("charge")
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.drop_column("decision_due_at")
        batch_op.drop_column("deemed_approved_at")
        batch_op.drop_column("bill")
        batch_op.drop_column("fee_paid")
    with op.batch_alter_table("bill", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bill_case_pk"))
    op.drop_table("bill")
