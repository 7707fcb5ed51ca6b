"""initial schema: offices, users, SOP versions, cases, visits, payments, audit trail

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:45:53.233545
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("opd", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("sop", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("from_step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("to_step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_event_case_seq", ["case_id", "seq"], unique=False)
        batch_op.create_index("ix_audit_event_opd_seq", ["opd", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_type"), ["type"], unique=False)

    op.create_table(
        "opd",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("opd", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("inspector", sa.Boolean(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["opd"],
            ["opd.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_opd"), ["opd"], unique=False)

    op.create_table(
        "sop_case",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tracking_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sop", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sop_version", sa.Integer(), nullable=False),
        sa.Column("opd", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step_role", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("step_entered_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("step_due_at", engine.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("service_due_at", engine.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("received", sa.JSON(), nullable=False),
        sa.Column("fired_by", sa.JSON(), nullable=False),
        sa.Column("extra_roles", sa.JSON(), nullable=False),
        sa.Column("paid_total", sa.BigInteger(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("closed_at", engine.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["opd"],
            ["opd.id"],
        ),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("tracking_code"),
    )
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.create_index("ix_sop_case_opd_pk", ["opd", "pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_sop_case_flagged"), ["flagged"], unique=False)
        batch_op.create_index("ix_sop_case_sop_step", ["sop", "step"], unique=False)

    op.create_table(
        "sop_version",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("opd", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("checksum", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("published_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["opd"],
            ["opd.id"],
        ),
        sa.PrimaryKeyConstraint("key", "version"),
    )
    with op.batch_alter_table("sop_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sop_version_opd"), ["opd"], unique=False)

    op.create_table(
        "payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("expected", sa.BigInteger(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("receipt", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("fee_mismatch", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["sop_case.pk"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_case_pk"), ["case_pk"], unique=False)

    op.create_table(
        "received_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("requirement", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("received_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["sop_case.pk"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_pk", "requirement"),
    )
    op.create_table(
        "step_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("sop", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("entered_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entered_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("due_at", engine.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_at", engine.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("left_via", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["sop_case.pk"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("step_visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_step_visit_case_pk"), ["case_pk"], unique=False)
        batch_op.create_index("ix_step_visit_sop_step", ["sop", "step"], unique=False)
    append_only()


def append_only() -> None:
    """Refuse UPDATE, DELETE and TRUNCATE on the audit trail, in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP;
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        # SQLite has no TRUNCATE: a DELETE without WHERE fires the row trigger too
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: {verb} refused'); "
                "END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    with op.batch_alter_table("step_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_step_visit_sop_step")
        batch_op.drop_index(batch_op.f("ix_step_visit_case_pk"))

    op.drop_table("step_visit")
    op.drop_table("received_document")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_case_pk"))

    op.drop_table("payment")
    with op.batch_alter_table("sop_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sop_version_opd"))

    op.drop_table("sop_version")
    with op.batch_alter_table("sop_case", schema=None) as batch_op:
        batch_op.drop_index("ix_sop_case_sop_step")
        batch_op.drop_index(batch_op.f("ix_sop_case_flagged"))
        batch_op.drop_index("ix_sop_case_opd_pk")

    op.drop_table("sop_case")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_user_opd"))

    op.drop_table("app_user")
    op.drop_table("opd")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_type"))
        batch_op.drop_index("ix_audit_event_opd_seq")
        batch_op.drop_index("ix_audit_event_case_seq")
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_actor"))

    op.drop_table("audit_event")
