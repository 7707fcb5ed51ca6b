"""The sweep: fire the SLA timers that have fallen due, each exactly once.

A sweep claims due timer rows in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
several workers can sweep at once), applies each in the same transaction that deletes it
and records its firing under a unique key, and commits. A crash before the commit leaves
the rows due for the next sweep (at least once); the deleted row and the unique firing
make a second firing impossible (at most once).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.exc import StaleDataError

from engine.domain import case as rules
from engine.domain.audit import Event
from engine.domain.model import SOP
from engine.service.context import Context
from engine.service.sops import sop_of
from engine.store import cases as store
from engine.store.tables import (
    Notification,
    Opd,
    SlaFiring,
    SlaTimer,
    SweepState,
    User,
    WebhookDelivery,
)
from engine.store.uow import UnitOfWork

BATCH = 500


@dataclass
class SweepResult:
    """What one sweep did: rungs fired, and webhook deliveries waiting to be sent."""

    fired: int = 0
    batches: int = 0
    deliveries: list[int] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # seconds from due to fired


def sweep(ctx: Context, batch: int = BATCH, max_batches: int | None = None) -> SweepResult:
    """Fire every timer due now, a batch per transaction, until none is left."""
    started = time.perf_counter()
    result = SweepResult()
    while max_batches is None or result.batches < max_batches:
        try:
            fired = _sweep_batch(ctx, batch, result)
        except (StaleDataError, store.StaleCase):
            continue  # a case changed under us: its timers are still due; claim them again
        result.batches += 1
        if fired < batch:
            break
    _mark_swept(ctx, result.fired, time.perf_counter() - started)
    return result


def _sweep_batch(ctx: Context, batch: int, result: SweepResult) -> int:
    with ctx.uow() as uow:
        now = ctx.clock()
        conn = uow.session.connection()
        postgres = conn.dialect.name == "postgresql"
        claim = _CLAIM.with_for_update(skip_locked=True) if postgres else _CLAIM
        timers = list(conn.execute(claim, {"now": now, "batch": batch}))
        if not timers:
            return 0
        timers.sort(key=lambda t: (t.due_at, t.id))
        fresh = _claim_firings(uow, timers, now)
        cases = _cases(uow, {t.case_pk for t in timers}, postgres)
        # offices named for a role in an SOP hold those roles on its cases
        staff = _staff(
            uow, {o for case, sop in cases.values() for o in (case.opd, *sop.role_opds.values())}
        )
        hooks = _webhooks(uow, {case.opd for case, _sop in cases.values()})
        states = {pk: store.state_of(case) for pk, (case, _sop) in cases.items()}
        notes: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        scheduled: list[dict[str, Any]] = []
        fired = 0
        for timer in timers:
            if timer.key not in fresh:
                continue  # fired already: a firing is unique per key
            case, sop = cases[timer.case_pk]
            holders = staff[case.opd]
            if sop.role_opds:
                holders = {**holders, **{r: staff[o][r] for r, o in sop.role_opds.items()}}
            rung = rules.Rung(timer.rung, timer.action, timer.due_at, timer.to_role, timer.flag)
            decision = rules.fire_rung(sop, states[timer.case_pk], rung, now)
            states[timer.case_pk] = decision.state
            scheduled += store.timer_rows(timer.case_pk, None, decision)
            for typed in decision.events:
                record = rules.audit_record(typed)
                if record is None:
                    continue
                event = Event(record.type, now, opd=case.opd, sop=case.sop, case_id=case.id,
                              from_step=record.from_step, data=dict(record.data))  # fmt: skip
                uow.record(event)
                if case.opd in hooks:
                    deliveries.append(_delivery(case.opd, hooks[case.opd], event, now))
            for kind, message, users in _notices(case, sop, decision, holders):
                notes.extend(
                    {"user_name": u, "case_id": case.id, "kind": kind, "message": message,
                     "created_at": now} for u in users
                )  # fmt: skip
            result.lateness.append((now - timer.due_at).total_seconds())
            fired += 1
        changed = [(case, states[pk]) for pk, (case, _sop) in cases.items()
                   if states[pk] != store.state_of(case)]  # fmt: skip
        uow.versions.update(store.save_states(uow.session, changed))
        if scheduled:
            conn.execute(insert(_TIMER), scheduled)
        if notes:
            conn.execute(insert(_NOTIFICATION), notes)
        conn.execute(_DELETE, {"ids": [t.id for t in timers]})
        ids: list[int] = []
        if deliveries:
            ids = list(conn.execute(_DELIVER.returning(_DELIVERY.c.id), deliveries).scalars())
        uow.commit()
        result.fired += fired
        result.deliveries.extend(ids)
        return len(timers)


_TIMER = SlaTimer.__table__  # type: ignore[attr-defined]
_NOTIFICATION = Notification.__table__  # type: ignore[attr-defined]
_DELIVERY = WebhookDelivery.__table__  # type: ignore[attr-defined]
# Core statements with bound parameters, compiled once and cached: a batch is a handful of
# statements whatever its size, the rows travel as parameters (executemany)
_CLAIM = (
    select(_TIMER.c.id, _TIMER.c.due_at, _TIMER.c.case_pk, _TIMER.c.rung, _TIMER.c.action,
           _TIMER.c.to_role, _TIMER.c.flag, _TIMER.c.key)
    .where(_TIMER.c.due_at <= bindparam("now", type_=_TIMER.c.due_at.type))
    .order_by(_TIMER.c.due_at)
    .limit(bindparam("batch"))
)  # fmt: skip
_DELETE = delete(_TIMER).where(_TIMER.c.id.in_(bindparam("ids", expanding=True)))
_DELIVER = insert(_DELIVERY)


def _cases(uow: UnitOfWork, pks: set[int], lock: bool) -> dict[int, tuple[Any, SOP]]:
    """The batch's cases (plain rows) and their SOPs, locked in pk order."""
    rows = store.load_rows(uow.session, pks, lock)
    models: dict[tuple[str, int, str], SOP] = {}
    out: dict[int, tuple[Any, SOP]] = {}
    for row in rows:
        at = (row.sop, row.sop_version, row.checksum)
        sop = models.get(at) or models.setdefault(at, sop_of(uow.session, *at))
        out[row.pk] = (row, sop)
    return out


def _notices(
    case: Any, sop: SOP, decision: rules.Decision, holders: dict[str, list[str]]
) -> list[tuple[str, str, list[str]]]:
    """Who is told what of a rung that fell due: (kind, message, user names)."""
    out = []
    for typed in decision.events:
        if isinstance(typed, rules.Warned):
            step = sop.step(typed.step)
            message = (
                f"case {case.tracking_code} has used {typed.label} of its time at step "
                f"`{step.name}`"
            )
            out.append(("sla.warned", message, holders.get(typed.role or "", [])))
        elif isinstance(typed, rules.Escalated):
            step = sop.step(typed.step)
            message = (
                f"case {case.tracking_code} is overdue at step `{step.name}` ({typed.label} of "
                f"its time); it is escalated to you ({sop.roles.get(typed.to, typed.to)})"
            )
            out.append(("sla.escalated", message, holders.get(typed.to, [])))
        elif isinstance(typed, rules.ServiceBreached):
            message = f"the service time of case {case.tracking_code} ({sop.title}) has run out"
            out.append(("sla.service_breached", message, holders.get(case.step_role or "", [])))
        elif isinstance(typed, rules.DecisionOverdue):
            message = (
                f"case {case.tracking_code} ({sop.title}) is deemed granted by law and its "
                f"decision is overdue; issue it now"
            )
            role = typed.to or case.step_role or ""
            out.append(("sla.decision_overdue", message, holders.get(role, [])))
    return out


def _staff(uow: UnitOfWork, offices: set[str]) -> dict[str, dict[str, list[str]]]:
    """role -> user names, per office."""
    holders: dict[str, dict[str, list[str]]] = {opd: defaultdict(list) for opd in offices}
    users = uow.session.execute(
        select(User.name, User.opd, User.roles).where(User.opd.in_(offices))  # type: ignore[union-attr]
    ).all()
    for name, opd, roles in users:
        for role in roles:
            holders[opd][role].append(name)
    return holders


def _webhooks(uow: UnitOfWork, offices: set[str]) -> dict[str, str]:
    rows = uow.session.execute(
        select(Opd.id, Opd.webhook_url).where(Opd.id.in_(offices), Opd.webhook_url.is_not(None))  # type: ignore[attr-defined,union-attr]
    ).all()
    return {opd: url for opd, url in rows}


def _claim_firings(uow: UnitOfWork, timers: list[Any], now: datetime) -> set[str]:
    """Record the batch's firings in one executemany; the keys that had not fired before."""
    rows = [
        {"key": t.key, "case_pk": t.case_pk, "due_at": t.due_at, "fired_at": now} for t in timers
    ]
    statement = _dialect(uow).insert(_FIRING).on_conflict_do_nothing().returning(_FIRING.c.key)
    return set(uow.session.connection().execute(statement, rows).scalars())


_FIRING = SlaFiring.__table__  # type: ignore[attr-defined]


def _dialect(uow: UnitOfWork) -> Any:
    return postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite


def _delivery(opd: str, url: str, event: Event, now: datetime) -> dict[str, Any]:
    payload = {
        "type": event.type,
        "at": event.at.isoformat(),
        "opd": event.opd,
        "sop": event.sop,
        "case_id": event.case_id,
        "step": event.from_step,
        "data": dict(event.data),
    }
    return {"opd": opd, "url": url, "payload": payload, "attempts": 0, "next_attempt_at": now,
            "delivered_at": None, "last_error": None}  # fmt: skip


def _mark_swept(ctx: Context, fired: int, duration: float) -> None:
    with ctx.uow() as uow:
        now = ctx.clock()
        table = SweepState.__table__  # type: ignore[attr-defined]
        values = {"id": 1, "swept_at": now, "fired": fired, "duration_seconds": duration}
        upsert = _dialect(uow).insert(table).values(values)
        uow.session.execute(
            upsert.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "swept_at": now,
                    "fired": table.c.fired + fired,
                    "duration_seconds": duration,
                },
            )
        )
        uow.commit()


def next_due(ctx: Context) -> datetime | None:
    """When the earliest timer falls due (None: no timer); one step down the due_at index."""
    with ctx.reader() as uow:
        return uow.session.connection().execute(_NEXT_DUE).scalar()


_NEXT_DUE = select(_TIMER.c.due_at).order_by(_TIMER.c.due_at).limit(1)


def last_sweep(ctx: Context) -> datetime | None:
    """When the timers were last swept (None: never)."""
    with ctx.reader() as uow:
        state = uow.session.get(SweepState, 1)
        return None if state is None else state.swept_at
