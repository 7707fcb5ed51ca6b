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

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.exc import StaleDataError

from engine.domain.audit import Event
from engine.domain.model import SOP
from engine.service import decisions
from engine.service.clocks import SERVICE_BREACHED, flag
from engine.service.context import Context
from engine.service.sops import sop_of
from engine.store.tables import (
    Case,
    Notification,
    Opd,
    SlaFiring,
    SlaTimer,
    SopVersion,
    SweepState,
    User,
    WebhookDelivery,
)
from engine.store.uow import UnitOfWork

BATCH = 500
INSPECTORATE = "inspectorate"
DEEMED_APPROVED = "deemed_approved"


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
        except StaleDataError:
            continue  # a case changed under us: its timers are still due; claim them again
        result.batches += 1
        if fired < batch:
            break
    _mark_swept(ctx, result.fired, time.perf_counter() - started)
    return result


def _sweep_batch(ctx: Context, batch: int, result: SweepResult) -> int:
    with ctx.uow() as uow:
        now = ctx.clock()
        claim = (
            select(SlaTimer)
            .where(SlaTimer.due_at <= now)  # type: ignore[arg-type]
            .order_by(SlaTimer.due_at)
            .limit(batch)
        )
        postgres = uow.session.get_bind().dialect.name == "postgresql"
        if postgres:
            claim = claim.with_for_update(skip_locked=True)
        timers = list(uow.session.execute(claim).scalars())
        if not timers:
            return 0
        cases = _cases(uow, {t.case_pk for t in timers}, postgres)
        # offices named for a role in an SOP hold those roles on its cases
        staff = _staff(
            uow, {o for case, sop in cases.values() for o in (case.opd, *sop.role_opds.values())}
        )
        hooks = _webhooks(uow, {case.opd for case, _sop in cases.values()})
        deliveries: list[WebhookDelivery] = []
        fired = 0
        claimed = _claim_firings(uow, timers, now, postgres)
        # the effects are written together at commit, not statement by statement
        with uow.session.no_autoflush:
            for timer in timers:
                if timer.key not in claimed:
                    continue  # fired already: a firing is unique per key
                case, sop = cases[timer.case_pk]
                holders = staff[case.opd]
                if sop.role_opds:
                    holders = {**holders, **{r: staff[o][r] for r, o in sop.role_opds.items()}}
                event = _apply(uow, timer, case, sop, now, holders)
                uow.record(event)
                result.lateness.append((now - timer.due_at).total_seconds())
                fired += 1
                if case.opd in hooks:
                    deliveries.append(_delivery(case.opd, hooks[case.opd], event, now))
        uow.session.execute(delete(SlaTimer).where(SlaTimer.id.in_([t.id for t in timers])))  # type: ignore[union-attr]
        uow.session.add_all(deliveries)
        uow.commit()
        result.fired += fired
        result.deliveries.extend(d.id for d in deliveries if d.id is not None)
        return len(timers)


def _cases(uow: UnitOfWork, pks: set[int], lock: bool) -> dict[int, tuple[Case, SOP]]:
    query = (
        select(Case, SopVersion.checksum)
        .join(SopVersion, (SopVersion.key == Case.sop) & (SopVersion.version == Case.sop_version))
        .where(Case.pk.in_(pks))  # type: ignore[union-attr]
        .order_by(Case.pk)
    )
    if lock:
        # timers first, then cases, in pk order: the order every writer takes them in
        query = query.with_for_update(of=Case)  # type: ignore[arg-type]
    rows = uow.session.execute(query).all()
    return {
        case.pk: (case, sop_of(uow.session, case.sop, case.sop_version, checksum))
        for case, checksum in rows
    }


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


def _claim_firings(
    uow: UnitOfWork, timers: list[SlaTimer], now: datetime, postgres: bool
) -> set[str]:
    """Record the batch's firings in one statement; the keys that had not fired before."""
    table = SlaFiring.__table__  # type: ignore[attr-defined]
    rows = [
        {"key": t.key, "case_pk": t.case_pk, "due_at": t.due_at, "fired_at": now} for t in timers
    ]
    dialect: Any = postgresql if postgres else sqlite
    statement = dialect.insert(table).values(rows).on_conflict_do_nothing()
    return set(uow.session.execute(statement.returning(table.c.key)).scalars())


def _apply(
    uow: UnitOfWork,
    timer: SlaTimer,
    case: Case,
    sop: SOP,
    now: datetime,
    holders: dict[str, list[str]],
) -> Event:
    """The effect of one rung on its case, and the audit event that records it."""
    lateness = round((now - timer.due_at).total_seconds(), 3)
    step = sop.step(case.step)
    common = {"due_at": timer.due_at.isoformat(), "lateness_seconds": lateness}
    if timer.action == "decision":
        return decisions.overdue(uow, case, sop, common, holders, now, _notify)
    if timer.action == "service":
        flags = [SERVICE_BREACHED] + ([DEEMED_APPROVED] if sop.deemed_approval else [])
        flag(case, *flags)
        data = {**common, "service_time": str(sop.service_time)}
        if sop.deemed_approval:
            data["deemed_approved"] = True
            data["legal_basis"] = "UU 30/2014 Pasal 53 (fiktif positif)"
            data.update(decisions.deemed(uow, case, sop, timer.due_at))
        message = f"the service time of case {case.tracking_code} ({sop.title}) has run out"
        _notify(
            uow, case, "sla.service_breached", message, holders.get(case.step_role or "", []), now
        )
        kind, from_step = "sla.service_breached", case.step
    else:
        ladder = sop.ladder(step)
        rung = ladder[timer.rung]
        data = {**common, "rung": timer.rung, "at": rung.label, "step": step.id}
        if timer.action == "warn":
            kind = "sla.warned"
            data["role"] = step.role
            recipients = holders.get(step.role or "", [])
            message = (
                f"case {case.tracking_code} has used {rung.label} of its time at step `{step.name}`"
            )
        else:
            kind = "sla.escalated"
            to = timer.to_role or ""
            data["to"] = to
            case.escalation_level = case.escalation_level + 1
            if to not in case.extra_roles:
                case.extra_roles = [*case.extra_roles, to]
            recipients = holders.get(to, [])
            message = (
                f"case {case.tracking_code} is overdue at step `{step.name}` "
                f"({rung.label} of its time); it is escalated to you ({sop.roles.get(to, to)})"
            )
        if timer.flag == INSPECTORATE:
            flag(case, INSPECTORATE)
            data["flag"] = INSPECTORATE
        _notify(uow, case, kind, message, recipients, now)
        from_step = step.id
    return Event(
        kind,
        now,
        opd=case.opd,
        sop=case.sop,
        case_id=case.id,
        actor=None,
        from_step=from_step,
        data=data,
    )


def _notify(
    uow: UnitOfWork, case: Case, kind: str, message: str, users: list[str], now: datetime
) -> None:
    uow.session.add_all(
        Notification(user_name=u, case_id=case.id, kind=kind, message=message, created_at=now)
        for u in users
    )


def _delivery(opd: str, url: str, event: Event, now: datetime) -> WebhookDelivery:
    payload = {
        "type": event.type,
        "at": event.at.isoformat(),
        "opd": event.opd,
        "sop": event.sop,
        "case_id": event.case_id,
        "step": event.from_step,
        "data": dict(event.data),
    }
    return WebhookDelivery(opd=opd, url=url, payload=payload, next_attempt_at=now)


def _mark_swept(ctx: Context, fired: int, duration: float) -> None:
    with ctx.uow() as uow:
        now = ctx.clock()
        postgres = uow.session.get_bind().dialect.name == "postgresql"
        dialect: Any = postgresql if postgres else sqlite
        table = SweepState.__table__  # type: ignore[attr-defined]
        upsert = dialect.insert(table).values(
            id=1, swept_at=now, fired=fired, duration_seconds=duration
        )
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


def last_sweep(ctx: Context) -> datetime | None:
    """When the timers were last swept (None: never)."""
    with ctx.reader() as uow:
        state = uow.session.get(SweepState, 1)
        return None if state is None else state.swept_at
