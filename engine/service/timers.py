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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
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
        notes: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        fired = 0

        def notify(
            uow: UnitOfWork, case: Case | _CaseRow, kind: str, message: str, users: list[str],
            now: datetime,
        ) -> None:  # fmt: skip
            notes.extend(
                {"user_name": u, "case_id": case.id, "kind": kind, "message": message,
                 "created_at": now} for u in users
            )  # fmt: skip

        # the effects are written together at commit, not statement by statement
        with uow.session.no_autoflush:
            for timer in timers:
                if timer.key not in fresh:
                    continue  # fired already: a firing is unique per key
                case, sop = cases[timer.case_pk]
                holders = staff[case.opd]
                if sop.role_opds:
                    holders = {**holders, **{r: staff[o][r] for r, o in sop.role_opds.items()}}
                event = _apply(uow, timer, case, sop, now, holders, notify)
                uow.record(event)
                result.lateness.append((now - timer.due_at).total_seconds())
                fired += 1
                if case.opd in hooks:
                    deliveries.append(_delivery(case.opd, hooks[case.opd], event, now))
        versions = _save_cases(uow, [case for case, _sop in cases.values()])
        if notes:
            conn.execute(insert(_NOTIFICATION), notes)
        conn.execute(_DELETE, {"ids": [t.id for t in timers]})
        ids: list[int] = []
        if deliveries:
            ids = list(conn.execute(_DELIVER.returning(_DELIVERY.c.id), deliveries).scalars())
        uow.versions.update(versions)
        uow.commit()
        result.fired += fired
        result.deliveries.extend(ids)
        return len(timers)


_TIMER = SlaTimer.__table__  # type: ignore[attr-defined]
_CASE = Case.__table__  # type: ignore[attr-defined]
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
# what a rung may change on a case; the version is checked and bumped as the ORM would
_CHANGES = ("flags", "flagged", "escalation_level", "extra_roles")
_UPDATE_CASE = (
    update(_CASE)
    .where(_CASE.c.pk == bindparam("b_pk"), _CASE.c.version == bindparam("b_version"))
    .values({**{c: bindparam(f"b_{c}") for c in _CHANGES}, "version": bindparam("b_new")})
)


@dataclass
class _CaseRow:
    """The columns of a case that a ladder rung reads or changes, loaded without the ORM."""

    pk: int
    id: str
    tracking_code: str
    sop: str
    opd: str
    step: str
    step_role: str | None
    flags: list[str]
    flagged: bool
    escalation_level: int
    extra_roles: list[str]
    version: int
    loaded: tuple[Any, ...] = ()

    def changes(self) -> tuple[Any, ...]:
        return (self.flags, self.flagged, self.escalation_level, self.extra_roles)


def _cases(uow: UnitOfWork, pks: set[int], lock: bool) -> dict[int, tuple[Case | _CaseRow, SOP]]:
    """The batch's cases and their SOPs: plain rows, except the cases a rung decides on
    (deemed approval, its overdue decision), which `decisions` changes as ORM objects."""
    query = (
        select(*(_CASE.c[f] for f in _ROW_FIELDS), SopVersion.checksum)  # type: ignore[call-overload]
        .join(SopVersion, (SopVersion.key == _CASE.c.sop)
              & (SopVersion.version == _CASE.c.sop_version))
        .where(_CASE.c.pk.in_(pks))
        .order_by(_CASE.c.pk)
    )  # fmt: skip
    if lock:
        # timers first, then cases, in pk order: the order every writer takes them in
        query = query.with_for_update(of=_CASE)
    rows = uow.session.connection().execute(query).all()
    models: dict[tuple[str, int, str], SOP] = {}
    out: dict[int, tuple[Case | _CaseRow, SOP]] = {}
    decided: list[int] = []
    for row in rows:
        at = (row.sop, row.sop_version, row.checksum)
        sop = models.get(at) or models.setdefault(at, sop_of(uow.session, *at))
        values = {f: getattr(row, f) for f in _ROW_FIELDS if f != "sop_version"}
        case = _CaseRow(**values)
        case.loaded = case.changes()
        out[row.pk] = (case, sop)
        if sop.deemed_approval or sop.decision_time is not None:
            decided.append(row.pk)
    if decided:  # already locked above
        for orm_case in uow.session.execute(select(Case).where(Case.pk.in_(decided))).scalars():  # type: ignore[union-attr]
            assert orm_case.pk is not None
            out[orm_case.pk] = (orm_case, out[orm_case.pk][1])
    return out


_ROW_FIELDS = ("pk", "id", "tracking_code", "sop", "sop_version", "opd", "step", "step_role",
               "flags", "flagged", "escalation_level", "extra_roles", "version")  # fmt: skip


def _save_cases(uow: UnitOfWork, cases: list[Case | _CaseRow]) -> dict[str, int]:
    """Write the plain-row cases a rung changed, in one executemany with the version check;
    the version each case of the batch has after this transaction."""
    rows = [c for c in cases if isinstance(c, _CaseRow)]
    changed = [c for c in rows if c.changes() != c.loaded]
    if changed:
        params = [
            {"b_pk": c.pk, "b_version": c.version, "b_new": c.version + 1,
             **{f"b_{f}": v for f, v in zip(_CHANGES, c.changes(), strict=True)}}
            for c in changed
        ]  # fmt: skip
        updated = uow.session.connection().execute(_UPDATE_CASE, params).rowcount
        if updated != len(params):
            raise StaleDataError(f"{len(params) - updated} case(s) changed under the sweep")
        for c in changed:
            c.version += 1
    return {c.id: c.version for c in rows}


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


def _apply(
    uow: UnitOfWork,
    timer: Any,  # a claimed sla_timer row
    case: Case | _CaseRow,
    sop: SOP,
    now: datetime,
    holders: dict[str, list[str]],
    notify: _Notify,
) -> Event:
    """The effect of one rung on its case, and the audit event that records it."""
    lateness = round((now - timer.due_at).total_seconds(), 3)
    step = sop.step(case.step)
    common = {"due_at": timer.due_at.isoformat(), "lateness_seconds": lateness}
    if timer.action == "decision":
        assert isinstance(case, Case)  # the cases of such SOPs are loaded as ORM objects
        return decisions.overdue(uow, case, sop, common, holders, now, notify)
    if timer.action == "service":
        flags = [SERVICE_BREACHED] + ([DEEMED_APPROVED] if sop.deemed_approval else [])
        _flag(case, *flags)
        data = {**common, "service_time": str(sop.service_time)}
        if sop.deemed_approval:
            assert isinstance(case, Case)
            data["deemed_approved"] = True
            data["legal_basis"] = "UU 30/2014 Pasal 53 (fiktif positif)"
            data.update(decisions.deemed(uow, case, sop, timer.due_at))
        message = f"the service time of case {case.tracking_code} ({sop.title}) has run out"
        notify(
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
            _flag(case, INSPECTORATE)
            data["flag"] = INSPECTORATE
        notify(uow, case, kind, message, recipients, now)
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


_Notify = Callable[[UnitOfWork, Case | _CaseRow, str, str, list[str], datetime], None]


def _flag(case: Case | _CaseRow, *flags: str) -> None:
    if isinstance(case, Case):
        flag(case, *flags)
        return
    # clocks.flag, on a plain row
    new = [f for f in flags if f not in case.flags]
    if new:
        case.flags = [*case.flags, *new]
    case.flagged = True


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
