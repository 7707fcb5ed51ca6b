"""Reports for the inspectorate: bottlenecks per step and officer, and SLA compliance.

Aggregates are computed in the database over the step visits, each of which stores its
wall-clock and working-time dwell when it ends. Medians and the 90th percentile are
ordered-set aggregates on PostgreSQL and window functions on SQLite, which lacks those;
both give the same numbers (the mean of the middle one or two values; nearest rank).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text

from engine.service.context import Context
from engine.service.errors import Invalid
from engine.service.refusals import deny
from engine.service.sops import get_sop
from engine.service.users import Principal
from engine.store.types import UTCDateTime

FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)

# Median: the mean of the middle one or two values. p90: nearest rank, ceil(0.9 n).
_DWELL_POSTGRES = """
SELECT step, {who} AS who, COUNT(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY dwell_seconds) AS median_seconds,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY dwell_seconds) AS p90_seconds,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY working_seconds) AS working_median_seconds,
       AVG(CASE WHEN due_at IS NOT NULL AND left_at > due_at THEN 1.0 ELSE 0.0 END)
           AS breach_rate,
       SUM(dwell_seconds) AS total_seconds
FROM step_visit
WHERE sop = :sop AND left_at IS NOT NULL AND paused = :paused
  AND entered_at >= :since AND entered_at < :until
GROUP BY step, who
"""

_DWELL_WINDOWS = """
WITH visits AS (
    SELECT step, {who} AS who, dwell_seconds AS d, working_seconds AS w,
           CASE WHEN due_at IS NOT NULL AND left_at > due_at THEN 1.0 ELSE 0.0 END AS late
    FROM step_visit
    WHERE sop = :sop AND left_at IS NOT NULL AND paused = :paused
      AND entered_at >= :since AND entered_at < :until
), ranked AS (
    SELECT step, who, d, w, late,
           ROW_NUMBER() OVER (PARTITION BY step, who ORDER BY d) AS rd,
           ROW_NUMBER() OVER (PARTITION BY step, who ORDER BY w) AS rw,
           COUNT(*) OVER (PARTITION BY step, who) AS n
    FROM visits
)
SELECT step, who, n,
       AVG(CASE WHEN rd IN ((n + 1) / 2, (n + 2) / 2) THEN d END) AS median_seconds,
       MIN(CASE WHEN rd >= (9 * n + 9) / 10 THEN d END) AS p90_seconds,
       AVG(CASE WHEN rw IN ((n + 1) / 2, (n + 2) / 2) THEN w END) AS working_median_seconds,
       AVG(late) AS breach_rate,
       SUM(d) AS total_seconds
FROM ranked
GROUP BY step, who, n
"""

_OPEN = """
SELECT step, COUNT(*) AS open_now,
       SUM(CASE WHEN due_at IS NOT NULL AND due_at < :now THEN 1 ELSE 0 END) AS overdue_now
FROM step_visit
WHERE sop = :sop AND left_at IS NULL
GROUP BY step
"""


def may_read_reports(ctx: Context, principal: Principal, opd: str | None) -> str | None:
    """Inspectors read every office's reports, OPD admins their own; returns the office."""
    if principal.inspector:
        return opd
    if not principal.admin:
        deny(ctx, principal, "only inspectors and OPD admins read reports", action="report")
    if opd is not None and opd != principal.opd:
        deny(ctx, principal, "an OPD admin reads only their own OPD's reports", opd=opd)
    return principal.opd


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The reporting period, open-ended where not given."""
    lo, hi = since or FAR_PAST, until or FAR_FUTURE
    if lo.tzinfo is None or hi.tzinfo is None:
        raise Invalid("give instants with an offset", [{"field": "since", "message": "offset"}])
    if hi <= lo:
        raise Invalid("`until` must be after `since`", [{"field": "until", "message": "order"}])
    return lo, hi


def postgres(ctx: Context) -> bool:
    """Whether the database is PostgreSQL (else SQLite)."""
    return ctx.engine.dialect.name == "postgresql"


def rows_of(ctx: Context, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a read-only SQL query as dicts.

    Instants are bound as stored instants, and lists and tuples as `IN` lists.
    """
    statement = text(sql).bindparams(
        *(bindparam(k, type_=UTCDateTime()) for k, v in params.items() if isinstance(v, datetime)),
        *(bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, list | tuple)),
    )
    with ctx.reader() as uow:
        return [dict(r) for r in uow.session.execute(statement, params).mappings()]


def bottlenecks(
    ctx: Context,
    principal: Principal,
    sop_key: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Per step, and per officer at each step: visits, dwell, breaches, what waits now."""
    sop, _row = get_sop(ctx, principal, sop_key)
    may_read_reports(ctx, principal, sop.opd)
    lo, hi = period(since, until)
    params = {"sop": sop.key, "since": lo, "until": hi, "paused": False}
    dwell = _DWELL_POSTGRES if postgres(ctx) else _DWELL_WINDOWS
    by_step = rows_of(ctx, dwell.format(who="''"), **params)
    by_officer = rows_of(ctx, dwell.format(who="left_by"), **params)
    waiting = {r["step"]: r for r in rows_of(ctx, _OPEN, sop=sop.key, now=ctx.clock())}
    names = {s.id: s.name for s in sop.steps}
    steps = []
    for row in by_step:
        now = waiting.get(row["step"], {})
        steps.append(
            {
                "step": row["step"],
                "step_name": names.get(row["step"], row["step"]),
                "visits": row["n"],
                "median_seconds": _num(row["median_seconds"]),
                "p90_seconds": _num(row["p90_seconds"]),
                "working_median_seconds": _num(row["working_median_seconds"]),
                "breach_rate": round(float(row["breach_rate"] or 0), 4),
                "open_now": int(now.get("open_now") or 0),
                "overdue_now": int(now.get("overdue_now") or 0),
                "total_waiting_hours": round(float(row["total_seconds"] or 0) / 3600, 2),
            }
        )
    for step, now in waiting.items():
        if not any(s["step"] == step for s in steps) and not sop.step(step).paused:
            steps.append(
                {
                    "step": step,
                    "step_name": names.get(step, step),
                    "visits": 0,
                    "median_seconds": None,
                    "p90_seconds": None,
                    "working_median_seconds": None,
                    "breach_rate": 0.0,
                    "open_now": int(now["open_now"]),
                    "overdue_now": int(now["overdue_now"] or 0),
                    "total_waiting_hours": 0.0,
                }
            )
    steps.sort(key=lambda s: -(s["median_seconds"] or 0))
    officers = sorted(
        (
            {
                "step": r["step"],
                "officer": r["who"],
                "visits": r["n"],
                "median_seconds": _num(r["median_seconds"]),
                "p90_seconds": _num(r["p90_seconds"]),
                "working_median_seconds": _num(r["working_median_seconds"]),
                "breach_rate": round(float(r["breach_rate"] or 0), 4),
            }
            for r in by_officer
        ),
        key=lambda r: -(r["median_seconds"] or 0),
    )
    return {
        "sop": sop.key,
        "since": since,
        "until": until,
        "steps": steps,
        "officers": officers,
    }


_COMPLIANCE = """
SELECT {group} , COUNT(*) AS visits,
       SUM(CASE WHEN v.left_at <= v.due_at THEN 1 ELSE 0 END) AS on_time
FROM (
    -- each visit counts for the office of the officer who held it (another office may
    -- work a step of an SOP), else for the case's
    SELECT v.*, COALESCE(u.opd, c.opd) AS opd
    FROM step_visit v JOIN sop_case c ON c.pk = v.case_pk
    LEFT JOIN app_user u ON u.name = v.left_by
) v
WHERE v.due_at IS NOT NULL AND v.left_at IS NOT NULL
  AND v.entered_at >= :since AND v.entered_at < :until {office}
GROUP BY {group}
ORDER BY {group}
"""

_LEVELS = {
    "opds": ("v.opd",),
    "sops": ("v.opd", "v.sop"),
    "steps": ("v.opd", "v.sop", "v.step"),
    "officers": ("v.opd", "v.left_by"),
}


def sla_compliance(
    ctx: Context,
    principal: Principal,
    opd: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The share of step visits finished within their time standard, at four levels."""
    office = may_read_reports(ctx, principal, opd)
    lo, hi = period(since, until)
    params: dict[str, Any] = {"since": lo, "until": hi}
    where = ""
    if office is not None:
        where, params["opd"] = "AND v.opd = :opd", office
    out: dict[str, Any] = {"opd": office, "since": since, "until": until}
    for level, columns in _LEVELS.items():
        rows = rows_of(ctx, _COMPLIANCE.format(group=", ".join(columns), office=where), **params)
        names = [c.split(".")[1].replace("left_by", "officer") for c in columns]
        out[level] = [
            {
                **{
                    name: row[column.split(".")[1]]
                    for name, column in zip(names, columns, strict=True)
                },
                "visits": int(row["visits"]),
                "on_time": int(row["on_time"] or 0),
                "on_time_rate": round(int(row["on_time"] or 0) / int(row["visits"]), 4),
            }
            for row in rows
        ]
    return out


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
