"""SLA timers and their firings, notifications, webhooks, the service clock's pauses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:57:36.743805
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_user_id", ["user_name", "id"], unique=False)

    op.create_table(
        "sweep_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("swept_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("opd", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", engine.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["opd"],
            ["opd.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery_next_attempt_at"), ["next_attempt_at"], unique=False
        )

    op.create_table(
        "sla_firing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("due_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["sop_case.pk"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("sla_firing", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_firing_case_pk"), ["case_pk"], unique=False)

    op.create_table(
        "sla_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("due_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("rung", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("to_role", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("flag", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["sop_case.pk"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["step_visit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("sla_timer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_timer_case_pk"), ["case_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_sla_timer_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sla_timer_visit_id"), ["visit_id"], unique=False)

    with op.batch_alter_table("opd", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )

    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused_since", engine.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "service_due_frozen", engine.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("paused_seconds", sa.Float(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("step_visit", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused_seconds", sa.Float(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("step_visit", schema=None) as batch_op:
        batch_op.drop_column("paused_seconds")

    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.drop_column("paused_seconds")
        batch_op.drop_column("service_due_frozen")
        batch_op.drop_column("paused_since")

    with op.batch_alter_table("opd", schema=None) as batch_op:
        batch_op.drop_column("webhook_url")

    with op.batch_alter_table("sla_timer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_timer_visit_id"))
        batch_op.drop_index(batch_op.f("ix_sla_timer_due_at"))
        batch_op.drop_index(batch_op.f("ix_sla_timer_case_pk"))

    op.drop_table("sla_timer")
    with op.batch_alter_table("sla_firing", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_firing_case_pk"))

    op.drop_table("sla_firing")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_next_attempt_at"))

    op.drop_table("webhook_delivery")
    op.drop_table("sweep_state")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_user_id")

    op.drop_table("notification")
