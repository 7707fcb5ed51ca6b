"""indexes for the inspectorate's reports: periods, open visits, flagged events

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN = sa.text("left_at IS NULL")


def _flagged(key: str) -> dict[str, sa.TextClause]:
    # the same conditions as engine.store.tables.flagged, frozen here as migrations are
    return {
        "postgresql_where": sa.text(f"(data ->> '{key}') = 'true'"),
        "sqlite_where": sa.text(f"json_extract(data, '$.{key}') = 1"),
    }


def upgrade() -> None:
    op.create_index("ix_step_visit_sop_entered", "step_visit", ["sop", "entered_at"])
    op.create_index("ix_step_visit_entered", "step_visit", ["entered_at"])
    op.create_index(
        "ix_step_visit_open",
        "step_visit",
        ["sop", "step"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )
    op.drop_index("ix_audit_event_type", table_name="audit_event")
    op.create_index("ix_audit_event_type_at", "audit_event", ["type", "at"])
    op.create_index("ix_audit_event_off_hours", "audit_event", ["at"], **_flagged("off_hours"))
    op.create_index(
        "ix_audit_event_fee_mismatch", "audit_event", ["at"], **_flagged("fee_mismatch")
    )


def downgrade() -> None:
    op.drop_index("ix_audit_event_fee_mismatch", table_name="audit_event")
    op.drop_index("ix_audit_event_off_hours", table_name="audit_event")
    op.drop_index("ix_audit_event_type_at", table_name="audit_event")
    op.create_index("ix_audit_event_type", "audit_event", ["type"])
    op.drop_index("ix_step_visit_open", table_name="step_visit")
    op.drop_index("ix_step_visit_entered", table_name="step_visit")
    op.drop_index("ix_step_visit_sop_entered", table_name="step_visit")
