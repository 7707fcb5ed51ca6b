"""Reports for the inspectorate: bottlenecks per step and officer, and SLA compliance.

Aggregates are computed in the database over the step visits, each of which stores its
wall-clock and working-time dwell when it ends. Medians and the 90th percentile are
ordered-set aggregates on PostgreSQL and window functions on SQLite, which lacks those;
both give the same numbers (the mean of the middle one or two values; nearest rank).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, text

from engine.domain.model import SOP
from engine.service.context import Context
from engine.service.errors import Invalid
from engine.service.refusals import deny
from engine.service.sops import find_row, get_sop, latest_rows, parsed
from engine.service.users import Principal
from engine.store.tables import User
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
FROM {visits} visits
WHERE sop = :sop AND left_at IS NOT NULL AND paused = :paused
  AND entered_at >= :since AND entered_at < :until
GROUP BY step, who
"""

_DWELL_WINDOWS = """
WITH visits AS (
    SELECT step, {who} AS who, dwell_seconds AS d, working_seconds AS w,
           CASE WHEN due_at IS NOT NULL AND left_at > due_at THEN 1.0 ELSE 0.0 END AS late
    FROM {visits} visits
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
SELECT step, role, COUNT(*) AS open_now,
       SUM(CASE WHEN due_at IS NOT NULL AND due_at < :now THEN 1 ELSE 0 END) AS overdue_now
FROM step_visit
WHERE sop = :sop AND left_at IS NULL
GROUP BY step, role
"""

# One office's share of an SOP's visits: those its officers held (`{office}`, the SQL of
# `visit_office`, reads `v`, `c` and `u`).
_OFFICE_VISITS = """(
    SELECT v.* FROM step_visit v
    JOIN sop_case c ON c.pk = v.case_pk
    LEFT JOIN app_user u ON u.name = v.left_by
    WHERE v.sop = :sop AND {office} = :opd
)"""


def role_offices(ctx: Context) -> list[tuple[str, str, str]]:
    """(SOP, role, office) for each role an SOP's latest version gives to another office."""
    with ctx.reader() as uow:
        sops = [parsed(row) for row in latest_rows(uow.session)]
    return sorted((s.key, role, opd) for s in sops for role, opd in s.role_opds.items())


def visit_office(ctx: Context, officer: str = "u.opd") -> tuple[str, dict[str, Any]]:
    """SQL for the office a step visit (`v`, of case `c`) counts for, and its parameters.

    The office of the officer who held it (`officer`: the office of the user who left it),
    else, while nobody has finished it, the office the SOP gives the visit's role, else
    the case's. Reports attribute each visit so: Dinkes' recommendation inside DPMPTSP's
    SIP is Dinkes' work, and DPMPTSP's admin is not shown it as theirs.
    """
    pairs = role_offices(ctx)
    params: dict[str, Any] = {}
    whens = []
    for i, (sop, role, opd) in enumerate(pairs):
        whens.append(f"WHEN v.sop = :ro_sop{i} AND v.role = :ro_role{i} THEN :ro_opd{i}")
        params |= {f"ro_sop{i}": sop, f"ro_role{i}": role, f"ro_opd{i}": opd}
    fallback = f"CASE {' '.join(whens)} ELSE c.opd END" if whens else "c.opd"
    return f"COALESCE({officer}, {fallback})", params


def offices_of(ctx: Context, names: Iterable[str | None]) -> dict[str, str | None]:
    """The office of each named user (None for an inspector); names of no user are left out."""
    wanted = sorted({n for n in names if n})
    if not wanted:
        return {}
    with ctx.reader() as uow:
        rows = uow.session.execute(
            select(User.name, User.opd).where(User.name.in_(wanted))  # type: ignore[attr-defined]
        ).all()
    return {name: opd for name, opd in rows}


def report_sop(ctx: Context, principal: Principal, key: str) -> tuple[SOP, str | None]:
    """The SOP a report reads, and the office whose share of it the caller reads (None:
    every office's). The admin of an office the SOP gives a role reads their office's
    share; anyone else as `may_read_reports` says."""
    if principal.admin and not principal.inspector and principal.opd is not None:
        with ctx.reader() as uow:
            row = find_row(uow.session, key)
        if row is not None and row.opd != principal.opd:
            sop = parsed(row)
            if principal.opd in sop.role_opds.values():
                return sop, principal.opd
    sop, _row = get_sop(ctx, principal, key)
    office = may_read_reports(ctx, principal, sop.opd)
    return sop, None if principal.inspector else office


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
    """Per step, and per officer at each step: visits, dwell, breaches, what waits now.

    An OPD admin reads their office's share: the visits its officers held, and what waits
    at the steps it works; the inspector reads every visit, each officer's office named.
    """
    sop, office = report_sop(ctx, principal, sop_key)
    lo, hi = period(since, until)
    params: dict[str, Any] = {"sop": sop.key, "since": lo, "until": hi, "paused": False}
    visits = "step_visit"
    if office is not None:
        held_by, more = visit_office(ctx)
        visits = _OFFICE_VISITS.format(office=held_by)
        params |= {"opd": office, **more}
    dwell = _DWELL_POSTGRES if postgres(ctx) else _DWELL_WINDOWS
    by_step = rows_of(ctx, dwell.format(who="''", visits=visits), **params)
    by_officer = rows_of(ctx, dwell.format(who="left_by", visits=visits), **params)
    waiting: dict[str, dict[str, Any]] = {}
    for r in rows_of(ctx, _OPEN, sop=sop.key, now=ctx.clock()):
        # nobody has held an open visit yet: it waits on the office the SOP gives its role
        if office is None or sop.office_of(r["role"]) == office:
            now = waiting.setdefault(r["step"], {"open_now": 0, "overdue_now": 0})
            now["open_now"] += int(r["open_now"])
            now["overdue_now"] += int(r["overdue_now"] or 0)
    names = {s.id: s.name for s in sop.steps}
    steps = []
    for row in by_step:
        now = waiting.get(row["step"], {})
        steps.append(
            {
                "step": row["step"],
                "step_name": names.get(row["step"], row["step"]),
                "opd": _step_office(sop, row["step"]),
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
                    "opd": _step_office(sop, step),
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
    held_in = offices_of(ctx, (r["who"] for r in by_officer))
    officers = sorted(
        (
            {
                "step": r["step"],
                "officer": r["who"],
                # the office of the officer who held the visits: for Dinkes' staff at
                # DPMPTSP's SIP, Dinkes
                "opd": held_in.get(r["who"]) or office or _step_office(sop, r["step"]),
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
        "opd": office,
        "since": since,
        "until": until,
        "steps": steps,
        "officers": officers,
    }


def _step_office(sop: SOP, step_id: str) -> str:
    """The office that works a step by the SOP (a step gone from the latest version: the
    SOP's own)."""
    try:
        return sop.office_of(sop.step(step_id).role)
    except KeyError:
        return sop.opd


_COMPLIANCE = """
SELECT {group} , COUNT(*) AS visits,
       SUM(CASE WHEN v.left_at <= v.due_at THEN 1 ELSE 0 END) AS on_time
FROM (
    -- each visit counts for the office of the officer who held it (another office may
    -- work a step of an SOP): `visit_office`
    SELECT v.*, {held_by} AS opd
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
    held_by, more = visit_office(ctx)
    params: dict[str, Any] = {"since": lo, "until": hi, **more}
    where = ""
    if office is not None:
        where, params["opd"] = "AND v.opd = :opd", office
    out: dict[str, Any] = {"opd": office, "since": since, "until": until}
    for level, columns in _LEVELS.items():
        sql = _COMPLIANCE.format(group=", ".join(columns), office=where, held_by=held_by)
        rows = rows_of(ctx, sql, **params)
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
