"""Is the service able to work: the database and the broker."""

from __future__ import annotations

from typing import Any

from kombu import Connection
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.service.context import Context
from engine.service.timers import last_sweep
from engine.settings import Settings


def database_status(ctx: Context) -> str:
    """`ok` when the database answers a query, else `down`."""
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return "down"
    return "ok"


def broker_status(settings: Settings) -> str:
    """`ok` when the broker accepts a connection (or the embedded one has its folder)."""
    if settings.embedded_broker:
        return "ok" if settings.broker_folder().is_dir() else "down"
    try:
        with Connection(settings.broker_url, connect_timeout=1) as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    except Exception:  # kombu raises the transport's own errors: any failure is "down"
        return "down"
    return "ok"


def scheduler_status(ctx: Context, settings: Settings) -> dict[str, Any]:
    """When timers were last swept, and whether that is as recent as the interval promises."""
    try:
        swept = last_sweep(ctx)
    except SQLAlchemyError:
        return {"status": "unknown", "last_sweep_at": None}
    if swept is None:
        return {"status": "never", "last_sweep_at": None}
    age = (ctx.clock() - swept).total_seconds()
    late = age > max(10 * settings.timer_interval, 10.0)
    return {"status": "late" if late else "ok", "last_sweep_at": swept}
