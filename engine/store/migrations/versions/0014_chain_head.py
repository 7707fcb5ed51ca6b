"""the chain's head, locked and read in one round trip (PostgreSQL)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# VOLATILE: under READ COMMITTED each statement in the function takes a snapshot of its
# own, so the head is read after the lock is held and sees every append committed before
# (a single statement that locked and read would have taken its snapshot before waiting)
FUNCTION = """
CREATE OR REPLACE FUNCTION sopflow_chain_head(lock_key bigint)
RETURNS TABLE (seq bigint, hash varchar) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT a.seq, a.hash::varchar FROM audit_event a ORDER BY a.seq DESC LIMIT 1;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS sopflow_chain_head(bigint)")
