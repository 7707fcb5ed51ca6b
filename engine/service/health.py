"""Is the service able to work: the database and the broker."""

from __future__ import annotations

import logging
from typing import Any

from kombu import Connection
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from engine.service.context import Context
from engine.service.errors import DatabaseUnavailable
from engine.service.timers import last_sweep
from engine.settings import Settings
from engine.store.tables import AuditEvent, Case, SlaFiring, SlaTimer, SweepState

log = logging.getLogger("sopflow.calendar")


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


def gauges(ctx: Context) -> dict[str, float]:
    """What /metrics reports from the database: the state of cases, timers and the trail."""
    now = ctx.clock()
    with ctx.reader() as uow:
        s = uow.session
        open_cases = s.execute(
            select(func.count()).select_from(Case).where(Case.status == "open")
        ).scalar_one()
        overdue = s.execute(
            select(func.count())
            .select_from(Case)
            .where(Case.status == "open", Case.step_due_at < now)  # type: ignore[operator]
        ).scalar_one()
        pending = s.execute(select(func.count()).select_from(SlaTimer)).scalar_one()
        chain = s.execute(select(func.max(AuditEvent.seq))).scalar_one() or 0
        state = s.get(SweepState, 1)
        recent = s.execute(
            select(SlaFiring.fired_at, SlaFiring.due_at)
            .order_by(SlaFiring.id.desc())  # type: ignore[union-attr]
            .limit(1000)
        ).all()
    lateness = sorted((fired - due).total_seconds() for fired, due in recent)
    return {
        "open_cases": float(open_cases),
        "overdue_steps": float(overdue),
        "pending_timers": float(pending),
        "audit_chain_length": float(chain),
        "sweep_duration_seconds": state.duration_seconds if state else 0.0,
        "timers_fired_total": float(state.fired) if state else 0.0,
        "timer_lateness_p50_seconds": _quantile(lateness, 0.5),
        "timer_lateness_p99_seconds": _quantile(lateness, 0.99),
    }


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def calendar_status(ctx: Context) -> dict[str, Any]:
    """Whether the current and next year's holidays and Ramadan are decreed or estimated.

    `unknown` when the register cannot be read (the database status says why)."""
    from engine.service.calendars import health

    try:
        return health(ctx, ctx.clock().date())
    except (SQLAlchemyError, DatabaseUnavailable):
        return {"status": "unknown", "years": {}}


def calendar_check(ctx: Context) -> dict[str, Any]:
    """At start-up: warn, naming the years, when the holiday data does not cover the current
    and the next year with decrees."""
    status = calendar_status(ctx)
    if status["status"] == "estimated":
        estimated = {y: v for y, v in status["years"].items() if v["status"] != "ok"}
        log.warning(
            "working calendar estimated for %s: record decrees with `sopflow calendar`, or "
            "install a newer `holidays` release",
            ", ".join(f"{y} (holidays {v['holidays']}, Ramadan {v['ramadan']})"
                      for y, v in estimated.items()),
        )  # fmt: skip
    return status
