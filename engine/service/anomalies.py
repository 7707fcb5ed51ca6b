"""Signs of illegal charges and abuse, found in the trail and the step visits.

Each item names its kind, its severity, the cases, the officer where there is one, the
audit `seq`s that prove it, and a sentence a non-statistician understands. Officers are
compared with their peers at the same step, with robust statistics and a minimum sample,
so one slow case accuses nobody:

- `holding_outlier`: the officer's median working-time dwell at a step against the median
  and MAD of the other officers' visits there (a robust z-score, with at least two other
  officers), at least `HOLD_RATIO` times their median, and more of the officer's files
  beyond that than an honest officer `SLOW_ALLOWANCE` times slower than the others would
  have (a one-sided binomial test);
- `queue_jumping`: how often the officer started a file while one that arrived earlier at
  the same step was still waiting (start estimated as the later of arrival and the
  officer's previous finish), against the rate of their peers there (a one-sided binomial
  test: it works where peers sit at or near zero).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from itertools import accumulate
from typing import Any

from sqlalchemy import Row, func, select

from engine.domain.machine import rupiah
from engine.domain.robust import GRID, Sketch, median_and_mad
from engine.service.context import Context
from engine.service.reports import (
    FAR_FUTURE,
    may_read_reports,
    offices_of,
    period,
    postgres,
    rows_of,
    visit_office,
)
from engine.service.sops import latest_rows, parsed
from engine.service.users import Principal
from engine.store.tables import AuditEvent, Case, User, flag_is_set

MIN_VISITS = 8  # an officer's finished visits at a step before they are compared
MIN_PEER_VISITS = 15
MIN_PEERS = 2  # other officers at the step: one colleague is not "the usual"
HOLD_Z = 3.5
HOLD_RATIO = 2.5
HOLD_P = 1e-3  # more of the officer's files beyond HOLD_RATIO than a slow officer's would be
SLOW_ALLOWANCE = 2.0  # an honest officer may be this many times slower than colleagues
JUMP_P = 1e-4
JUMP_RATIO = 2.0
MIN_OFF_HOURS = 3
MAX_SEQS = 50  # evidence listed per item; the rest is in the trail
ACTS = ("case.created", "case.transitioned", "case.received", "case.payment_recorded")


def _item(
    kind: str,
    severity: str,
    cases: list[str],
    actor: str | None,
    seqs: list[int],
    detail: str,
    sop: str | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    """One finding, with the SOP and step it concerns where it concerns one."""
    return {
        "kind": kind,
        "severity": severity,
        "case_ids": sorted(set(cases)),
        "actor": actor,
        "event_seqs": sorted(set(seqs))[:MAX_SEQS],
        "detail": detail,
        "sop": sop,
        "step": step,
    }


def anomalies(
    ctx: Context,
    principal: Principal,
    opd: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Every kind of anomaly in the period, for one office or (inspectors) all."""
    office = may_read_reports(ctx, principal, opd)
    lo, hi = period(since, until)
    scope = {"lo": lo, "hi": hi, "opd": office}
    if office is not None:
        # an office's share: the acts of its officers and the visits they held, also on
        # another office's cases (Dinkes' recommendation inside DPMPTSP's SIP)
        scope["held_by"], scope["roles"] = visit_office(ctx)
    items = [
        *fee_mismatch(ctx, scope),
        *(holding := holding_outliers(ctx, scope)),
        *queue_jumping(ctx, scope, holding),
        *repeated_returns(ctx, scope),
        *separation_of_duties(ctx, scope),
        *off_hours(ctx, scope),
    ]
    _name_offices(ctx, items, office)
    order = {"high": 0, "medium": 1, "low": 2}
    items.sort(key=lambda i: (order[i["severity"]], i["kind"], i["actor"] or ""))
    return {"opd": office, "since": since, "until": until, "items": items}


def _name_offices(ctx: Context, items: list[dict[str, Any]], office: str | None) -> None:
    """Each item's `opd`: the office of the officer it names (in an office's report, that
    office), else of its first case."""
    offices = offices_of(ctx, (i["actor"] for i in items))
    unnamed = {i["case_ids"][0] for i in items if not offices.get(i["actor"]) and i["case_ids"]}
    cases: dict[str, str] = {}
    if unnamed and office is None:
        with ctx.reader() as uow:
            rows = uow.session.execute(
                select(Case.id, Case.opd).where(Case.id.in_(sorted(unnamed)))  # type: ignore[attr-defined]
            ).all()
        cases = {case_id: opd for case_id, opd in rows}
    for item in items:
        first = item["case_ids"][0] if item["case_ids"] else None
        item["opd"] = offices.get(item["actor"]) or office or cases.get(first or "")


def _events(
    ctx: Context, scope: dict[str, Any], kinds: tuple[str, ...], *where: Any
) -> list[Row[Any]]:
    """The events of these kinds in scope, oldest first: seq, case, actor and data."""
    query = select(AuditEvent.seq, AuditEvent.case_id, AuditEvent.actor, AuditEvent.data).where(
        AuditEvent.type.in_(kinds),  # type: ignore[attr-defined]
        AuditEvent.at >= scope["lo"],  # type: ignore[operator]
        AuditEvent.at < scope["hi"],  # type: ignore[operator]
        *where,
    )
    if scope["opd"] is not None:
        # the act counts for the office of the officer who did it, else for the case's
        query = query.outerjoin(User, User.name == AuditEvent.actor).where(
            func.coalesce(User.opd, AuditEvent.opd) == scope["opd"]
        )
    with ctx.reader() as uow:
        return list(uow.session.execute(query.order_by(AuditEvent.seq)).all())


def _flag(ctx: Context, key: str) -> Any:
    """`data` has `key: true`, in the words of the partial index on it."""
    return flag_is_set(ctx.engine.dialect.name, key)


def fee_mismatch(ctx: Context, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Payments that differ from the official fee, per officer who recorded them."""
    by_officer: dict[str | None, list[Row[Any]]] = defaultdict(list)
    for event in _events(ctx, scope, ("case.payment_recorded",), _flag(ctx, "fee_mismatch")):
        by_officer[event.actor].append(event)
    items = []
    for actor, events in by_officer.items():
        excess = sum(int(e.data.get("excess", 0)) for e in events)
        # each payment is compared with what was lawful for it: the tariff, the case's bill
        # (SKRD) for a levy, or a declared charge
        unbilled = sum(1 for e in events if e.data.get("no_bill"))
        free = sum(
            1
            for e in events
            if int(e.data.get("expected", 0)) == 0 and not e.data.get("levy")
            and not e.data.get("charge")
        )  # fmt: skip
        over = sum(1 for e in events if int(e.data.get("excess", 0)) > 0)
        if excess >= 0:
            net = f"{rupiah(excess)} more than was lawful in all"
        else:
            net = f"{rupiah(-excess)} less than was due in all"
        detail = (
            f"{actor} recorded {len(events)} payment(s) that differ from the official fee, "
            f"bill or charge, {net}"
            + (f"; {free} of them on a service that is free by law" if free else "")
            + (f"; {unbilled} of them on a levy before any bill was issued" if unbilled else "")
        )
        items.append(
            _item(
                "fee_mismatch",
                "high" if over else "medium",
                [e.case_id for e in events if e.case_id],
                actor,
                [e.seq for e in events],
                detail + ".",
            )
        )
    return items


_VISITS = """
    SELECT v.sop, v.step, v.left_by AS officer, v.working_seconds AS w
    FROM step_visit v JOIN sop_case c ON c.pk = v.case_pk {holder}
    WHERE v.left_at IS NOT NULL AND v.paused = :paused AND v.left_by IS NOT NULL
      AND v.working_seconds IS NOT NULL
      AND v.entered_at >= :lo AND v.entered_at < :hi {office}
"""

# Each officer's visits at each step, as a sketch: their count and their quantiles at
# 0, 1/100, …, 1 (linear interpolation between order statistics, as percentile_cont does).
_SKETCHES_POSTGRES = """
SELECT sop, step, officer, COUNT(*) AS k,
       percentile_cont(ARRAY[{fractions}]::float8[]) WITHIN GROUP (ORDER BY w) AS q
FROM ({visits}) visits
GROUP BY sop, step, officer
"""

_SKETCHES_WINDOWS = """
WITH ranked AS (
    SELECT sop, step, officer, w,
           ROW_NUMBER() OVER (PARTITION BY sop, step, officer ORDER BY w) AS r,
           COUNT(*) OVER (PARTITION BY sop, step, officer) AS k
    FROM ({visits}) visits
), grid(i) AS (
    SELECT 0 UNION ALL SELECT i + 1 FROM grid WHERE i < {grid}
)
SELECT a.sop, a.step, a.officer, a.k, g.i,
       a.w + ((g.i * (a.k - 1)) % {grid}) * 1.0 / {grid} * (COALESCE(b.w, a.w) - a.w) AS q
FROM ranked a
JOIN grid g ON a.r = 1 + (g.i * (a.k - 1)) / {grid}
LEFT JOIN ranked b ON b.sop = a.sop AND b.step = a.step AND b.officer = a.officer
     AND b.r = a.r + 1
ORDER BY a.sop, a.step, a.officer, g.i
"""


def _sketches(ctx: Context, scope: dict[str, Any]) -> dict[tuple[str, str], dict[str, Sketch]]:
    """Per (sop, step), each officer's finished visits there, sketched in the database."""
    visits = _VISITS.format(**_office_filter(scope))
    params = _params(scope, paused=False)
    out: dict[tuple[str, str], dict[str, Sketch]] = defaultdict(dict)
    if postgres(ctx):
        fractions = ", ".join(f"{i / GRID:g}" for i in range(GRID + 1))
        sql = _SKETCHES_POSTGRES.format(fractions=fractions, visits=visits)
        for row in rows_of(ctx, sql, **params):
            sketch = Sketch(int(row["k"]), _ordered(float(x) for x in row["q"]))
            out[(row["sop"], row["step"])][row["officer"]] = sketch
        return out
    quantiles: dict[tuple[str, str, str], tuple[int, list[float]]] = {}
    sql = _SKETCHES_WINDOWS.format(grid=GRID, visits=visits)
    for row in rows_of(ctx, sql, **params):
        key = (row["sop"], row["step"], row["officer"])
        quantiles.setdefault(key, (int(row["k"]), []))[1].append(float(row["q"]))
    for (sop, step, officer), (k, q) in quantiles.items():
        out[(sop, step)][officer] = Sketch(k, _ordered(q))
    return out


def _ordered(quantiles: Iterable[float]) -> tuple[float, ...]:
    """Quantiles as interpolated, with any last-bit rounding that broke their order undone."""
    return tuple(accumulate(quantiles, max))


def _office_filter(scope: dict[str, Any], who: str = "v.left_by") -> dict[str, str]:
    """SQL that keeps the visits (`v`, of case `c`) an office's officers held (`who` names
    them), as `holder` (a join after the case's) and `office` (a condition)."""
    if scope["opd"] is None:
        return {"holder": "", "office": ""}
    return {
        "holder": f"LEFT JOIN app_user u ON u.name = {who}",
        "office": f"AND {scope['held_by']} = :opd",
    }


def _params(scope: dict[str, Any], **more: Any) -> dict[str, Any]:
    params = {"lo": scope["lo"], "hi": scope["hi"], **more}
    if scope["opd"] is not None:
        params |= {"opd": scope["opd"], **scope["roles"]}
    return params


def holding_outliers(ctx: Context, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Officers who hold files at a step far longer than the other officers there."""
    items = []
    for (sop, step), officers in _sketches(ctx, scope).items():
        for officer, own in officers.items():
            peers = [s for name, s in officers.items() if name != officer]
            n = sum(s.count for s in peers)
            if own.count < MIN_VISITS or len(peers) < MIN_PEERS or n < MIN_PEER_VISITS:
                continue
            usual, mad = median_and_mad(peers)
            mine = own.median
            if usual <= 0:
                continue
            spread = max(1.4826 * mad, 0.05 * usual)  # a MAD of 0 is no licence
            z = (mine - usual) / spread
            limit = HOLD_RATIO * usual
            if z < HOLD_Z or mine < limit:
                continue
            # a small sample's median can be a few slow files: beyond chance, or nobody
            longer, done, p = _beyond_allowance(ctx, scope, sop, step, officer, limit)
            if p > HOLD_P:
                continue
            cases, seqs = _evidence(ctx, scope, sop, step, officer, slowest=True)
            items.append(
                _item(
                    "holding_outlier",
                    "high" if mine >= 2 * HOLD_RATIO * usual else "medium",
                    cases,
                    officer,
                    seqs,
                    f"{officer} keeps files at step `{step}` ({sop}) for {_hours(mine)} of "
                    f"working time at the median, against {_hours(usual)} for the "
                    f"{len(peers)} other officers there; {longer} of the {done} files "
                    f"{officer} finished there took more than {HOLD_RATIO:g} times that "
                    f"(chance of that for an officer just {SLOW_ALLOWANCE:g} times slower "
                    f"than the others: {p:.1e}; robust z = {z:.1f}).",
                    sop,
                    step,
                )
            )
    return items


# How many of the officer's files at the step took longer than `limit`, and how many of
# the other officers' files took longer than `limit / allowance`.
_LONGER = """
SELECT SUM(CASE WHEN v.left_by = :officer THEN 1 ELSE 0 END) AS own,
       SUM(CASE WHEN v.left_by = :officer AND v.working_seconds > :limit
           THEN 1 ELSE 0 END) AS own_longer,
       SUM(CASE WHEN v.left_by <> :officer THEN 1 ELSE 0 END) AS peers,
       SUM(CASE WHEN v.left_by <> :officer AND v.working_seconds * :allowance > :limit
           THEN 1 ELSE 0 END) AS peers_longer
FROM step_visit v JOIN sop_case c ON c.pk = v.case_pk {holder}
WHERE v.sop = :sop AND v.step = :step AND v.paused = :paused
  AND v.left_at IS NOT NULL AND v.left_by IS NOT NULL AND v.working_seconds IS NOT NULL
  AND v.entered_at >= :lo AND v.entered_at < :hi {office}
"""


def _beyond_allowance(
    ctx: Context, scope: dict[str, Any], sop: str, step: str, officer: str, limit: float
) -> tuple[int, int, float]:
    """(files over `limit`, files, chance of that many for an honest slow officer).

    An honest officer may be up to SLOW_ALLOWANCE times slower than the others: their
    files would then pass `limit` as often as the others' files pass `limit /
    SLOW_ALLOWANCE` (Laplace's rule keeps a share of zero from making any file damning).
    """
    sql = _LONGER.format(**_office_filter(scope))
    params = _params(
        scope, sop=sop, step=step, officer=officer, paused=False, limit=limit,
        allowance=SLOW_ALLOWANCE,
    )  # fmt: skip
    row = rows_of(ctx, sql, **params)[0]
    own, longer = int(row["own"] or 0), int(row["own_longer"] or 0)
    rate = (int(row["peers_longer"] or 0) + 1) / (int(row["peers"] or 0) + 2)
    return longer, own, binomial_tail(longer, own, rate)


# When did the officer start on a file? The trail does not say, so it is estimated as the
# later of the file's arrival at the step and the officer's previous finish (an officer works
# one file at a time). A visit overtook when a file that arrived earlier at the same step
# was started later, or not at all: a file already in a colleague's hands is not overtaken.
# An officer found holding files keeps a pile, not one file at a time: when they took a file
# is unknown, so at every step their files count as in their hands, never as waiting.
_OVERTAKES = """
WITH visits AS (
    SELECT v.id, v.sop, v.step, v.left_by AS officer, v.entered_at, v.left_at,
           LAG(v.left_at) OVER (PARTITION BY v.left_by ORDER BY v.left_at, v.id) AS free_at
    FROM step_visit v JOIN sop_case c ON c.pk = v.case_pk {holder}
    WHERE v.paused = :paused AND v.entered_at >= :lo AND v.entered_at < :hi {office}
), started AS (
    SELECT id, sop, step, officer, entered_at, left_at,
           CASE WHEN left_at IS NULL THEN :forever
                WHEN free_at IS NOT NULL AND free_at > entered_at THEN free_at
                ELSE entered_at END AS began
    FROM visits
), ordered AS (
    SELECT sop, step, officer, left_at, began,
           MAX(CASE WHEN officer IN :held THEN NULL ELSE began END) OVER (
               PARTITION BY sop, step ORDER BY entered_at, id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS earlier_began
    FROM started
)
SELECT sop, step, officer, COUNT(*) AS done,
       SUM(CASE WHEN earlier_began > began THEN 1 ELSE 0 END) AS overtook
FROM ordered
WHERE left_at IS NOT NULL AND officer IS NOT NULL
GROUP BY sop, step, officer
"""


def queue_jumping(
    ctx: Context, scope: dict[str, Any], holders: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Officers whose cases overtake earlier arrivals at a step far more than peers' do.

    `holders` are the `holding_outlier` items: those officers' files are left out.
    """
    held = sorted({h["actor"] for h in holders or []}) or [""]  # an IN list is never empty
    rows = rows_of(
        ctx,
        _OVERTAKES.format(**_office_filter(scope)),
        **_params(scope, paused=False, forever=FAR_FUTURE, held=held),
    )
    by_step: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_step[(row["sop"], row["step"])].append(row)
    items = []
    for (sop, step), officers in by_step.items():
        total_done = sum(int(o["done"]) for o in officers)
        total_over = sum(int(o["overtook"] or 0) for o in officers)
        for row in officers:
            done, over = int(row["done"]), int(row["overtook"] or 0)
            peers_done, peers_over = total_done - done, total_over - over
            if done < MIN_VISITS or peers_done < MIN_PEER_VISITS:
                continue
            # Laplace's rule keeps a peer rate of zero from making any overtake damning
            rate = (peers_over + 1) / (peers_done + 2)
            p = binomial_tail(over, done, rate)
            if p > JUMP_P or over / done < JUMP_RATIO * rate:
                continue
            cases, seqs = _evidence(ctx, scope, sop, step, row["officer"], slowest=False)
            items.append(
                _item(
                    "queue_jumping",
                    "high",
                    cases,
                    row["officer"],
                    seqs,
                    f"{row['officer']} took {over} of {done} cases at step `{step}` ({sop}) "
                    f"ahead of a citizen who had arrived earlier and was still waiting: "
                    f"{over / done:.0%}, against {peers_over / max(peers_done, 1):.0%} for "
                    f"the other officers there (chance of that by luck: {p:.1e}).",
                    sop,
                    step,
                )
            )
    return items


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space so large n stays exact."""
    if k <= 0:
        return 1.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    ]  # fmt: skip
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


# The officer's slowest (or quickest) visits at the step first, then the events that ended
# just those: joining every visit to the trail before choosing cost seconds at a year.
_EVIDENCE = """
SELECT c.id AS case_id, e.seq
FROM (
    SELECT id, case_pk, step, left_by, left_at, working_seconds FROM step_visit
    WHERE sop = :sop AND step = :step AND left_by = :officer
      AND entered_at >= :lo AND entered_at < :hi
    ORDER BY working_seconds {order}, id
    LIMIT {limit}
) v
JOIN sop_case c ON c.pk = v.case_pk
JOIN audit_event e ON e.case_id = c.id AND e.type = 'case.transitioned'
     AND e.from_step = v.step AND e.actor = v.left_by AND e.at = v.left_at
ORDER BY v.working_seconds {order}, v.id
"""


def _evidence(
    ctx: Context, scope: dict[str, Any], sop: str, step: str, officer: str, slowest: bool
) -> tuple[list[str], list[int]]:
    """The officer's cases at the step, and the seqs of the transitions that ended them."""
    sql = _EVIDENCE.format(order="DESC" if slowest else "ASC", limit=MAX_SEQS)
    rows = rows_of(ctx, sql, lo=scope["lo"], hi=scope["hi"], sop=sop, step=step, officer=officer)
    return [r["case_id"] for r in rows], [int(r["seq"]) for r in rows]


# Every stay in a paused step is a wait on the citizen, but only a wait for the same thing
# again is a return: "complete your file" twice is; "complete your file", then "come and
# collect it", is not.
_RETURNS = """
SELECT c.id AS case_id, v.step, v.entered_by AS officer, COUNT(*) AS returns
FROM step_visit v JOIN sop_case c ON c.pk = v.case_pk
WHERE v.paused = :paused AND v.entered_at >= :lo AND v.entered_at < :hi {office}
GROUP BY c.id, v.step, v.entered_by
"""

# An office's share: every return on the cases where one of its officers sent one (a case
# sent back again counts all its returns), and which officers are the office's.
_OFFICE_RETURNS = """
AND v.case_pk IN (
    SELECT v.case_pk FROM step_visit v JOIN sop_case c ON c.pk = v.case_pk
    LEFT JOIN app_user u ON u.name = v.entered_by
    WHERE v.paused = :paused AND v.entered_at >= :lo AND v.entered_at < :hi
      AND {held_by} = :opd
)
"""

_OFFICERS_OF = """
SELECT u.name FROM app_user u WHERE u.opd = :opd AND u.name IN :names
"""


def repeated_returns(ctx: Context, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Cases sent back to the citizen for the same wait two or more times, per officer."""
    office = "" if scope["opd"] is None else _OFFICE_RETURNS.format(held_by=scope["held_by"])
    rows = rows_of(ctx, _RETURNS.format(office=office), **_params(scope, paused=True))
    per_wait: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        per_wait[(row["case_id"], row["step"])] += int(row["returns"])
    repeated = {wait for wait, count in per_wait.items() if count >= 2}
    by_officer: dict[str, set[str]] = defaultdict(set)
    waits: dict[str, set[str]] = defaultdict(set)
    ours = {row["officer"] for row in rows}
    if scope["opd"] is not None and ours:
        # another office's officer on the same case is that office's to answer for
        names = sorted(ours)
        ours = {r["name"] for r in rows_of(ctx, _OFFICERS_OF, opd=scope["opd"], names=names)}
    for row in rows:
        if (row["case_id"], row["step"]) in repeated and row["officer"] in ours:
            by_officer[row["officer"]].add(row["case_id"])
            waits[row["officer"]].add(row["step"])
    items = []
    for officer, cases in by_officer.items():
        mine = sorted(cases)
        seqs = _returns_seqs(ctx, scope, officer, mine, sorted(waits[officer]))
        items.append(
            _item(
                "repeated_return",
                "high" if len(mine) >= 3 else "medium",
                mine,
                officer,
                seqs,
                f"{officer} sent {len(mine)} case(s) back to the citizen that had been sent "
                "back before: files returned again and again are a known way to ask for money.",
            )
        )
    return items


def _returns_seqs(
    ctx: Context, scope: dict[str, Any], officer: str, cases: list[str], waits: list[str]
) -> list[int]:
    """The officer's transitions that sent these cases to these waits."""
    events = _events(
        ctx,
        scope,
        ("case.transitioned",),
        AuditEvent.actor == officer,
        AuditEvent.case_id.in_(cases[:MAX_SEQS]),  # type: ignore[union-attr]
        AuditEvent.to_step.in_(waits),  # type: ignore[union-attr]
    )
    return [e.seq for e in events]


# Cases where one officer fired two or more of the transitions an SOP keeps apart, among
# the cases with such a transition in the period; which pairs, is checked per SOP.
_SAME_HAND = """
WITH touched AS (
    SELECT DISTINCT case_pk FROM step_visit
    WHERE left_via IN :vias AND entered_at >= :lo AND entered_at < :hi
)
SELECT c.id AS case_id, c.sop, v.left_by AS officer, {fired} AS fired
FROM touched t
JOIN step_visit v ON v.case_pk = t.case_pk
JOIN sop_case c ON c.pk = v.case_pk {holder}
WHERE v.left_via IN :vias AND v.left_by IS NOT NULL {office}
GROUP BY c.id, c.sop, v.left_by
HAVING COUNT(DISTINCT v.left_via) > 1
"""


def separation_of_duties(ctx: Context, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Refused attempts to act against separation of duties, and any case where it broke."""
    refused: dict[str | None, list[Row[Any]]] = defaultdict(list)
    for event in _events(ctx, scope, ("case.transition_refused",)):
        if "not_by" in event.data.get("guards", []):
            refused[event.actor].append(event)
    items = [
        _item(
            "separation_of_duties",
            "medium",
            [e.case_id for e in events if e.case_id],
            actor,
            [e.seq for e in events],
            f"{actor} tried {len(events)} time(s) to approve or finish a case they had "
            "worked on earlier, which the SOP keeps apart; the system refused.",
        )
        for actor, events in refused.items()
    ]
    with ctx.reader() as uow:
        sops = [parsed(row) for row in latest_rows(uow.session)]
    if scope["opd"] is not None:  # the office's SOPs, and those that give it a role
        sops = [s for s in sops if scope["opd"] in (s.opd, *s.role_opds.values())]
    apart = {
        sop.key: [(earlier, t.name) for t in sop.transitions for earlier in t.not_by]
        for sop in sops
    }
    vias = sorted({name for pairs in apart.values() for pair in pairs for name in pair})
    if not vias:
        return items
    if postgres(ctx):
        fired = "string_agg(DISTINCT v.left_via, ',')"
    else:
        fired = "group_concat(DISTINCT v.left_via)"
    sql = _SAME_HAND.format(fired=fired, **_office_filter(scope))
    for row in rows_of(ctx, sql, **_params(scope, vias=vias)):
        both = set(row["fired"].split(","))
        for earlier, later in apart.get(row["sop"], []):
            if earlier in both and later in both:
                items.append(
                    _item(
                        "separation_of_duties",
                        "high",
                        [row["case_id"]],
                        row["officer"],
                        _fired_seqs(ctx, row["case_id"], row["officer"], {earlier, later}),
                        f"{row['officer']} fired both `{earlier}` and `{later}` on one case "
                        f"of {row['sop']}, which the SOP keeps apart.",
                        row["sop"],
                    )
                )
    return items


def _fired_seqs(ctx: Context, case_id: str, officer: str, names: set[str]) -> list[int]:
    """The seqs of the officer's transitions with these names on the case, whenever."""
    query = select(AuditEvent.seq, AuditEvent.data).where(
        AuditEvent.case_id == case_id,
        AuditEvent.type == "case.transitioned",
        AuditEvent.actor == officer,
    )
    with ctx.reader() as uow:
        rows = uow.session.execute(query.order_by(AuditEvent.seq)).all()
    return [seq for seq, data in rows if data.get("transition") in names]


def off_hours(ctx: Context, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Officers acting on cases outside the calendar's working time, repeatedly."""
    by_officer: dict[str | None, list[Row[Any]]] = defaultdict(list)
    for event in _events(ctx, scope, ACTS, _flag(ctx, "off_hours")):
        by_officer[event.actor].append(event)
    return [
        _item(
            "off_hours_action",
            "medium" if len(events) >= 3 * MIN_OFF_HOURS else "low",
            [e.case_id for e in events if e.case_id],
            actor,
            [e.seq for e in events],
            f"{actor} acted {len(events)} time(s) on cases outside working hours, when the "
            "office is closed to the public.",
        )
        for actor, events in by_officer.items()
        if len(events) >= MIN_OFF_HOURS
    ]


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
