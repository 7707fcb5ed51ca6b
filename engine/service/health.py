"""Is the service able to work: the database and the broker."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.service.context import Context


def database_status(ctx: Context) -> str:
    """`ok` when the database answers a query, else `down`."""
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return "down"
    return "ok"
