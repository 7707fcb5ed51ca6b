"""Cases: opening them, moving them through their SOP, documents and payments."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from engine.domain import case as rules
from engine.domain.audit import Event
from engine.domain.calendar import calendar_for
from engine.domain.errors import DeemedApproved, GuardFailed, RoleRefused, TransitionRefused
from engine.domain.machine import Actor, CaseFacts, Fired, compile_sop
from engine.domain.model import SOP, FieldSpec
from engine.domain.patterns import PatternError, matches
from engine.domain.personal import has_personal_number, masked, personal_names, purposes
from engine.domain.validator import suggest
from engine.service import clocks
from engine.service.calendars import case_calendar, load_register, mark_estimated
from engine.service.context import Context, traced
from engine.service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
)
from engine.service.refusals import deny, refuse
from engine.service.sops import find_row, parsed, sop_of
from engine.service.stale import stale_version
from engine.service.users import Principal
from engine.store import cases as store
from engine.store.tables import Bill, Case, Payment, ReceivedDocument
from engine.store.uow import UnitOfWork

PAYMENT_METHODS = ("cash", "transfer", "qris")
READ_ONLY = "inspectors read cases; they change nothing"
MAX_TEXT = 2000
# Crockford's base32: no I, L, O, U, so a code read aloud or copied by hand survives
_TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_tracking_code() -> str:
    """Twelve random base32 characters (60 bits), grouped for reading: `7XQ2-M9RA-K4DT`."""
    raw = "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


# ---- views -------------------------------------------------------------------------------


def fee_settled(case: Case, sop: SOP) -> bool:
    """True when the fee is paid in full: the tariff, or a levy's current bill (or waived)."""
    if sop.fee.levy:
        return case.bill is not None and case.fee_paid >= int(case.bill["amount"])
    return sop.fee.amount > 0 and case.fee_paid >= sop.fee.amount


def facts(case: Case, sop: SOP) -> CaseFacts:
    """What the machine's guards need to know about a case."""
    return CaseFacts(
        step=case.step,
        received=frozenset(case.received),
        paid=fee_settled(case, sop),
        fired_by={name: frozenset(users) for name, users in case.fired_by.items()},
        extra_roles=frozenset(sop.escalated_at(case.extra_roles, case.step)),
        bill=None if case.bill is None else int(case.bill["amount"]),
        fields=dict(case.fields),
        deemed_approved=case.deemed_approved_at is not None,
    )


def masked_fields(sop: SOP, values: Mapping[str, Any]) -> dict[str, Any]:
    """The applicant's data with every personal field (marked `pii` or named like one) and
    every number shaped like a NIK or a phone number masked."""
    names = personal_names(sop)
    return {k: masked(f"fields.{k}", v) if f"fields.{k}" in names or has_personal_number(v)
            else v for k, v in values.items()}  # fmt: skip


def case_view(case: Case, sop: SOP, principal: Principal) -> dict[str, Any]:
    """A case as the API shows it to this caller."""
    allowed: list[str] = []
    blocked: list[dict[str, str]] = []
    if case.status == "open" and principal.staff:
        machine, state = compile_sop(sop), facts(case, sop)
        actor = Actor(principal.name, acting_roles(principal, sop))
        allowed = machine.allowed(state, actor)
        blocked = [
            {"name": b.name, "guard": b.guard, "message": b.message}
            for b in machine.blocked(state, actor)
        ]
    step = sop.step(case.step)
    return {
        "id": case.id,
        "tracking_code": case.tracking_code,
        "sop": case.sop,
        "sop_version": case.sop_version,
        "opd": case.opd,
        "status": case.status,
        "outcome": case.outcome,
        "step": case.step,
        "step_name": step.name,
        "step_role": case.step_role,
        "step_entered_at": case.step_entered_at,
        "step_due_at": case.step_due_at,
        "service_due_at": case.service_due_at,
        # a due instant lies in a year whose holidays or Ramadan are not yet decreed
        "deadline_estimated": case.deadline_estimated,
        "escalation_level": case.escalation_level,
        "flags": list(case.flags),
        "received": list(case.received),
        # the requirements asked of this application (`when` applied to its fields)
        "requirements": [r.id for r in sop.requirements if r.applies(case.fields)],
        "paid_total": case.paid_total,
        "bill": case.bill,
        "deemed_approved_at": case.deemed_approved_at,
        "decision_due_at": case.decision_due_at,
        "allowed_transitions": allowed,
        "blocked_transitions": blocked,
        "version": case.version,
        "created_at": case.created_at,
        "created_by": case.created_by,
        "closed_at": case.closed_at,
        # the OPD's own staff work with the clear values; the inspectorate sees them masked
        "fields": dict(case.fields) if principal.staff else masked_fields(sop, case.fields),
    }


def act(
    kind: str,
    sop: SOP,
    case: Case,
    principal: Principal,
    now: datetime,
    data: dict[str, Any],
    *,
    from_step: str | None = None,
    to_step: str | None = None,
) -> Event:
    """The audit event of an act by staff on a case, marked when done outside working time."""
    if not calendar_for(sop.calendar).is_working(now):
        data = {**data, "off_hours": True}
    data = traced(data)
    return Event(
        kind,
        now,
        opd=case.opd,
        sop=case.sop,
        case_id=case.id,
        actor=principal.name,
        from_step=from_step,
        to_step=to_step,
        data=data,
    )


# ---- reading cases -------------------------------------------------------------------------


def load_case(
    ctx: Context,
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    action: str,
    lock: bool = False,
) -> tuple[Case, SOP]:
    """A case the caller may see, with its SOP; another OPD's case is a 404 (and audited).

    With `lock`, the case's row is locked until the transaction ends (on PostgreSQL; a
    SQLite writer already holds the whole database), so writers queue instead of colliding.
    """
    loaded = store.find(uow.session, case_id, lock)
    if loaded is None:
        raise NotFound(f"no case `{case_id}`")
    case, checksum = loaded
    sop = sop_of(uow.session, case.sop, case.sop_version, checksum)
    _may_see(ctx, uow, principal, case, sop, action)
    return case, sop


def load_case_and_visit(
    ctx: Context,
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    action: str,
    lock: bool = False,
) -> tuple[Case, SOP, store.OpenVisit | None]:
    """`load_case`, with the visit the case is in now, in one statement: the case comes
    detached, to decide on and save through `engine.store.cases`."""
    loaded = store.load(uow.session, case_id, lock)
    if loaded is None:
        raise NotFound(f"no case `{case_id}`")
    case, checksum, visit = loaded
    sop = sop_of(uow.session, case.sop, case.sop_version, checksum)
    _may_see(ctx, uow, principal, case, sop, action)
    return case, sop, visit


def _may_see(
    ctx: Context, uow: UnitOfWork, principal: Principal, case: Case, sop: SOP, action: str
) -> None:
    """Refuse another office's case as if it did not exist (404), and record the attempt."""
    if not (principal.may_see_opd(case.opd) or guest_may_see(principal, sop, case)):
        uow.rollback()
        refuse(
            ctx,
            NotFound(f"no case `{case.id}`"),
            "access.denied",
            principal,
            case,
            {"action": action},
        )


def acting_roles(principal: Principal, sop: SOP) -> frozenset[str]:
    """The caller's roles that count on this SOP: a role the SOP gives to another office
    counts only for that office's staff, and the SOP's own roles only for its office's."""
    if principal.opd is None:
        return frozenset()
    return frozenset(r for r in principal.roles if sop.office_of(r) == principal.opd)


def guest_may_see(principal: Principal, sop: SOP, case: Case) -> bool:
    """True for staff of another office the SOP names for a role they hold, on a case they
    work on now or worked on before; nothing else of the owning office is theirs to see."""
    if principal.opd is None or principal.opd == case.opd or principal.inspector:
        return False
    held = acting_roles(principal, sop)
    if not held:
        return False
    if any(principal.name in names for names in case.fired_by.values()):
        return True
    return case.status == "open" and bool(held.intersection(step_roles(sop, case)))


def load_case_to_change(
    ctx: Context,
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    action: str,
    lock: bool = False,
) -> tuple[Case, SOP]:
    """`load_case` for a change: a caller who only reads (an inspector) is refused, audited."""
    case, sop = load_case(ctx, uow, principal, case_id, action, lock)
    if not principal.staff:
        uow.rollback()
        deny(ctx, principal, READ_ONLY, case, action=action)
    return case, sop


def get_case(ctx: Context, principal: Principal, case_id: str) -> dict[str, Any]:
    """One case as the caller may see it."""
    with ctx.reader() as uow:
        case, sop, _visit = load_case_and_visit(ctx, uow, principal, case_id, "read")
        return case_view(case, sop, principal)


# ---- opening a case ------------------------------------------------------------------------


def check_fields(sop: SOP, values: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The applicant's data checked against the SOP's `fields`; problems name each field."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        return {}, [{"field": "fields", "message": "should be an object of field values"}]
    specs = {f.name: f for f in sop.fields}
    clean: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            errors.append(
                {
                    "field": f"fields.{name}",
                    "message": f"`{name}` is not a field of this SOP{suggest(name, specs)}",
                }
            )
            continue
        problem = _field_problem(spec, value)
        if problem:
            errors.append({"field": f"fields.{name}", "message": problem})
        elif value is not None:
            clean[name] = value
    for spec in sop.fields:
        if spec.required and values.get(spec.name) in (None, ""):
            errors.append({"field": f"fields.{spec.name}", "message": "is required"})
    return clean, errors


def _field_problem(spec: FieldSpec, value: Any) -> str | None:
    if value is None:
        return None
    if spec.type == "string":
        if not isinstance(value, str):
            return "should be text"
        if len(value) > MAX_TEXT:
            return f"is longer than {MAX_TEXT} characters"
        if spec.pattern:
            try:
                if not matches(spec.pattern, value):
                    return f"does not have the expected form (`{spec.pattern}`)"
            except PatternError:
                # published before patterns had to be linear: refused rather than unchecked
                return "cannot be checked: the SOP's pattern is not supported; ask the office"

    elif spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "should be a whole number"
    elif spec.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "should be a number"
    elif spec.type == "boolean":
        if not isinstance(value, bool):
            return "should be true or false"
    elif spec.type == "date":
        try:
            date.fromisoformat(value)
        except (TypeError, ValueError):
            return "should be a date like 2026-03-02"
    return None


def check_received(sop: SOP, received: Any) -> tuple[list[str], list[dict[str, str]]]:
    """Requirement ids to mark received, checked against the SOP's requirements."""
    if received is None:
        return [], []
    if not isinstance(received, list) or not all(isinstance(r, str) for r in received):
        return [], [{"field": "received", "message": "should be a list of requirement ids"}]
    known = sop.requirement_ids
    errors = [
        {
            "field": "received",
            "message": f"`{r}` is not a requirement of this SOP{suggest(r, known)}",
        }
        for r in received
        if r not in known
    ]
    return list(dict.fromkeys(received)), errors


def open_case(
    ctx: Context,
    principal: Principal,
    sop_key: str,
    version: int | None = None,
    fields: Any = None,
    received: Any = None,
) -> dict[str, Any]:
    """Open a case on a published SOP of the caller's OPD, in its first step."""
    if not principal.staff:
        deny(ctx, principal, "inspectors read cases; they do not open them", action="open_case")
    now = ctx.clock()
    with ctx.uow() as uow:
        row = find_row(uow.session, sop_key, version)
        if row is None:
            what = f"`{sop_key}`" + (f" version {version}" if version is not None else "")
            raise Invalid(
                f"no published SOP {what}", [{"field": "sop", "message": "not published"}]
            )
        if row.opd != principal.opd:
            uow.rollback()
            deny(
                ctx,
                principal,
                f"`{sop_key}` belongs to `{row.opd}`; you open cases for `{principal.opd}`",
                opd=row.opd,
                sop=sop_key,
                action="open_case",
            )
        sop = parsed(row)
        clean, errors = check_fields(sop, fields)
        docs, doc_errors = check_received(sop, received)
        if errors or doc_errors:
            raise Invalid("the case cannot be opened as given", errors + doc_errors)
        first = sop.initial
        decision = rules.open_case(sop, case_calendar(uow.session, sop, sop.opd), now,
                                   principal.name)  # fmt: skip
        case = Case(
            id=secrets.token_hex(12),
            tracking_code=new_tracking_code(),
            sop=sop.key,
            sop_version=sop.version,
            opd=sop.opd,
            received=docs,
            fields=clean,
            created_at=now,
            created_by=principal.name,
            **store.state_values(decision.state),
        )
        mark_estimated(uow.session, case)
        uow.session.add(case)
        uow.session.flush()  # the case's row first, with everything set, in one INSERT
        assert case.pk is not None
        entered = decision.of(rules.StepEntered)
        visit_id = store.enter(uow.session, case, entered[0]) if entered else None
        store.schedule(uow.session, case.pk, visit_id, decision)
        add_documents(uow, case, docs, principal, now)
        # personal values go into the chain as commitments only (engine.store.personal)
        created = {"sop_version": sop.version, "fields": clean, "received": docs}
        uow.record(
            act("case.created", sop, case, principal, now, created, to_step=first.id),
            personal_names(sop),
            purposes(sop),
        )
        uow.commit()
        return case_view(case, sop, principal)


# ---- firing a transition -------------------------------------------------------------------


def fire_transition(
    ctx: Context,
    principal: Principal,
    case_id: str,
    name: str,
    comment: str | None = None,
    received: Any = None,
    if_match: int | None = None,
) -> dict[str, Any]:
    """Move a case along a transition; one transaction with its audit events."""
    if comment is not None and len(comment) > MAX_TEXT:
        raise Invalid("the comment is too long", [{"field": "comment", "message": "too long"}])
    with ctx.uow() as uow:
        case, sop, visit = load_case_and_visit(ctx, uow, principal, case_id, "transition")
        if not principal.staff:
            uow.rollback()
            deny(ctx, principal, READ_ONLY, case, action="transition", transition=name)
        if if_match is not None and if_match != case.version:
            raise stale_version(uow, case, if_match)
        if case.status != "open":
            raise Conflict(f"the case is closed ({case.outcome}); nothing more can be fired")
        docs, doc_errors = check_received(sop, received)
        if doc_errors:
            raise Invalid("unknown documents", doc_errors)
        new_docs = [d for d in docs if d not in case.received]
        state = facts(case, sop)
        state = replace(state, received=state.received | set(new_docs))
        machine = compile_sop(sop)
        try:
            actor = Actor(principal.name, acting_roles(principal, sop))
            fired = machine.fire(state, actor, name, comment)
        except TransitionRefused as e:
            raise Conflict(
                str(e), [{"field": "name", "message": "allowed: " + ", ".join(e.allowed)}]
            ) from None
        except DeemedApproved as e:
            uow.rollback()
            refuse(
                ctx,
                Conflict(str(e), [{"guard": "deemed_approval", "message": str(e)}]),
                "case.transition_refused",
                principal,
                case,
                {"transition": name, "guards": ["deemed_approval"]},
            )
        except RoleRefused as e:
            uow.rollback()
            refuse(
                ctx,
                Forbidden(str(e)),
                "access.denied",
                principal,
                case,
                {"action": "transition", "transition": name, "roles": e.roles},
            )
        except GuardFailed as e:
            uow.rollback()
            refuse(
                ctx,
                Invalid(
                    f"`{name}` is refused: {e}",
                    [{"guard": f.guard, "message": f.message} for f in e.failures],
                ),
                "case.transition_refused",
                principal,
                case,
                {"transition": name, "guards": [f.guard for f in e.failures]},
            )
        with stale_is_conflict(uow, if_match):
            _move(uow, sop, case, visit, fired, comment, new_docs, principal, ctx.clock())
            uow.commit()
        return case_view(case, sop, principal)


@contextmanager
def stale_is_conflict(uow: UnitOfWork, if_match: int | None) -> Iterator[None]:
    """A case changed meanwhile by someone else is a 409 (412 under If-Match)."""
    try:
        yield
    except (StaleDataError, store.StaleCase):
        uow.rollback()
        if if_match is not None:
            raise PreconditionFailed("the case changed meanwhile; reload it and retry") from None
        raise Conflict("the case changed meanwhile; reload it and retry") from None


def _move(
    uow: UnitOfWork,
    sop: SOP,
    case: Case,
    visit: store.OpenVisit | None,
    fired: Fired,
    comment: str | None,
    new_docs: list[str],
    principal: Principal,
    now: datetime,
) -> None:
    """Apply a transition the machine allowed: decide, save, record."""
    changes: dict[str, Any] = {}
    if new_docs:
        mark_received(uow, sop, case, new_docs, principal, now)
        changes["received"] = case.received
    calendar = case_calendar(uow.session, sop, case.opd)
    decision = rules.fire(
        sop,
        calendar,
        store.state_of(case),
        None if visit is None else visit.visit,
        fired,
        now,
        principal.name,
        comment,
    )
    changes["deadline_estimated"] = estimated(uow, decision.state)
    store.save(uow.session, case, visit, decision, changes)
    uow.versions[case.id] = case.version
    record_decision(uow, sop, case, principal, now, decision)


def estimated(uow: UnitOfWork, state: rules.CaseState) -> bool:
    """True when one of the case's due instants lies in a year whose holidays or Ramadan
    are only estimated."""
    register = load_register(uow.session)
    dues = (state.step_due_at, state.service_due_at, state.service_due_frozen)
    return any(d is not None and register.year_status(d.year)["status"] != "ok" for d in dues)


def record_decision(
    uow: UnitOfWork,
    sop: SOP,
    case: Case,
    principal: Principal | None,
    now: datetime,
    decision: rules.Decision,
) -> list[Event]:
    """The audit events of a decision, derived from its typed events in one place: a staff
    act is marked off hours and traced to its request; a closing names who closed."""
    recorded = []
    for typed in decision.events:
        record = rules.audit_record(typed)
        if record is None:
            continue
        if record.staff_act and principal is not None:
            event = act(record.type, sop, case, principal, now, dict(record.data),
                        from_step=record.from_step, to_step=record.to_step)  # fmt: skip
        else:
            event = Event(
                record.type,
                now,
                opd=case.opd,
                sop=case.sop,
                case_id=case.id,
                actor=principal.name if principal is not None else None,
                from_step=record.from_step,
                to_step=record.to_step,
                data=dict(record.data),
            )
        uow.record(event, personal_names(sop), purposes(sop))
        recorded.append(event)
    return recorded


def mark_received(
    uow: UnitOfWork,
    sop: SOP,
    case: Case,
    docs: Sequence[str],
    principal: Principal,
    now: datetime,
) -> None:
    """Mark documents received on a case and record it."""
    add_documents(uow, case, docs, principal, now)
    case.received = [*case.received, *docs]
    received: dict[str, Any] = {"received": list(docs)}
    outside = [d for d in docs if (r := sop.requirement(d)) and not r.applies(case.fields)]
    if outside:
        # documents this kind of application is not asked for: outside the standard
        received["outside_standard"] = outside
    uow.record(act("case.received", sop, case, principal, now, received, from_step=case.step))


def add_documents(
    uow: UnitOfWork, case: Case, docs: Sequence[str], principal: Principal, now: datetime
) -> None:
    """One row per requirement received on a case."""
    assert case.pk is not None
    uow.session.add_all(
        ReceivedDocument(
            case_pk=case.pk, requirement=doc, received_at=now, received_by=principal.name
        )
        for doc in docs
    )


def step_roles(sop: SOP, case: Case) -> list[str]:
    """Roles that work on the case's current step: the step's own, those that may fire a
    transition from it, and any the case was escalated to that may act there."""
    escalated = sop.escalated_at(case.extra_roles, case.step)
    return list(dict.fromkeys([*sop.roles_at(case.step), *escalated]))


def _one_of(roles: Sequence[str]) -> str:
    if not roles:
        return "a role, and the SOP names none for it"
    return ("the role " if len(roles) == 1 else "one of the roles ") + ", ".join(
        f"`{r}`" for r in roles
    )


def receive_documents(
    ctx: Context, principal: Principal, case_id: str, received: Any, if_match: int | None = None
) -> dict[str, Any]:
    """Mark documents received on a case without moving it."""
    with ctx.uow() as uow:
        case, sop = load_case_to_change(ctx, uow, principal, case_id, "receive")
        if case.status != "open":
            raise Conflict(f"the case is closed ({case.outcome}); no documents can be marked")
        roles = step_roles(sop, case)
        if not acting_roles(principal, sop).intersection(roles):
            uow.rollback()
            deny(
                ctx,
                principal,
                f"marking documents received at step `{case.step}` needs {_one_of(roles)} "
                "(a role that works on that step)",
                case,
                action="receive",
                roles=roles,
            )
        if if_match is not None and if_match != case.version:
            raise stale_version(uow, case, if_match)
        docs, errors = check_received(sop, received)
        if errors:
            reasons = "; ".join(e["message"] for e in errors)
            raise Invalid(f"nothing was marked: {reasons}", errors)
        if not docs:
            raise Invalid(
                "no documents to mark", [{"field": "received", "message": "name at least one"}]
            )
        new_docs = [d for d in docs if d not in case.received]
        if new_docs:
            with stale_is_conflict(uow, if_match):
                mark_received(uow, sop, case, new_docs, principal, ctx.clock())
                uow.commit()
        return case_view(case, sop, principal)


def payment_view(payment: Payment, case_id: str) -> dict[str, Any]:
    """A payment as the API shows it."""
    return {
        "id": payment.id,
        "case_id": case_id,
        "amount": payment.amount,
        "expected": payment.expected,
        "fee_mismatch": payment.fee_mismatch,
        "method": payment.method,
        "receipt": payment.receipt,
        "charge": payment.charge,
        "recorded_at": payment.recorded_at,
        "recorded_by": payment.recorded_by,
    }


# ---- payments ------------------------------------------------------------------------------


def payment_evidence(
    amount: int, expected: int, method: str, receipt: str | None
) -> dict[str, Any]:
    """What a `case.payment_recorded` event says of the payment, against the tariff."""
    return {
        "amount": amount,
        "expected": expected,
        "excess": amount - expected,
        "method": method,
        "receipt": receipt,
        "fee_mismatch": amount != expected,
    }


def expected_payment(case: Case, sop: SOP, amount: int, charge: str | None) -> dict[str, Any]:
    """What a payment is compared with: a declared charge, the levy's bill, or the tariff.

    On a levy, paying up to the bill (in instalments too) is lawful; what goes beyond it, or
    anything paid before a bill exists, is the excess.
    """
    if charge is not None:
        declared = sop.charge(charge)
        assert declared is not None
        excess = amount - declared.amount
        return {"expected": declared.amount, "excess": excess, "charge": charge}
    if not sop.fee.levy:
        return {"expected": sop.fee.amount, "excess": amount - sop.fee.amount}
    if case.bill is None:
        return {"expected": 0, "excess": amount, "levy": True, "no_bill": True}
    outstanding = max(int(case.bill["amount"]) - case.fee_paid, 0)
    return {
        "expected": outstanding,
        "excess": max(amount - outstanding, 0),
        "levy": True,
        "bill": case.bill["reference"],
    }


def record_payment(
    ctx: Context,
    principal: Principal,
    case_id: str,
    amount: Any,
    method: Any,
    receipt: Any = None,
    charge: Any = None,
) -> dict[str, Any]:
    """Record a payment as evidence; one beyond the official fee, bill or charge is flagged."""
    errors = []
    if charge is not None and (not isinstance(charge, str) or not 0 < len(charge) <= 64):
        errors.append({"field": "charge", "message": "should be the id of a declared charge"})
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        errors.append({"field": "amount", "message": "should be a whole number of rupiah above 0"})
    if method not in PAYMENT_METHODS:
        errors.append({"field": "method", "message": "should be cash, transfer or qris"})
    if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 200):
        errors.append({"field": "receipt", "message": "should be text of at most 200 characters"})
    if errors:
        raise Invalid("the payment cannot be recorded as given", errors)
    with ctx.uow() as uow:
        # payments on one case queue on its row: each adds to what the last one left
        case, sop = load_case_to_change(ctx, uow, principal, case_id, "payment", lock=True)
        collectors = list(sop.collectors)
        if not acting_roles(principal, sop).intersection(collectors):
            uow.rollback()
            deny(
                ctx,
                principal,
                f"recording a payment on `{sop.key}` needs {_one_of(collectors)} "
                "(the SOP's `fee.collected_by`)",
                case,
                action="payment",
                roles=collectors,
            )
        if charge is not None and sop.charge(charge) is None:
            known = [c.id for c in sop.charges]
            raise Invalid(
                f"`{charge}` is not a charge this SOP declares",
                [{"field": "charge", "message": "declared: " + (", ".join(known) or "none")
                  + suggest(charge, known)}],
            )  # fmt: skip
        now = ctx.clock()
        compared = expected_payment(case, sop, amount, charge)
        expected = compared["expected"]
        mismatch = compared["excess"] != 0
        assert case.pk is not None
        payment = Payment(
            case_pk=case.pk,
            amount=amount,
            expected=expected,
            method=method,
            receipt=receipt,
            fee_mismatch=mismatch,
            recorded_at=now,
            recorded_by=principal.name,
            charge=charge,
        )
        uow.session.add(payment)
        case.paid_total = case.paid_total + amount
        if charge is None:
            case.fee_paid = case.fee_paid + amount
        if mismatch:
            clocks.flag(case, "fee_mismatch")
        evidence = {**payment_evidence(amount, expected, method, receipt), **compared}
        evidence["fee_mismatch"] = mismatch
        uow.record(
            act("case.payment_recorded", sop, case, principal, now, evidence, from_step=case.step)
        )
        with stale_is_conflict(uow, None):
            uow.commit()
        return payment_view(payment, case.id)


# ---- bills (SKRD) -----------------------------------------------------------------------

MAX_REFERENCE = 100
MAX_BASIS = 500


def bill_view(bill: Bill) -> dict[str, Any]:
    """A bill as the API shows it (and as the case carries its current one)."""
    return {
        "amount": bill.amount,
        "reference": bill.reference,
        "basis": bill.basis,
        "waiver": bill.waiver,
        "billed_at": bill.billed_at.isoformat(),
        "billed_by": bill.billed_by,
    }


def _bill_errors(amount: Any, reference: Any, basis: Any, waiver: Any) -> list[dict[str, str]]:
    errors = []
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= 10**13:
        errors.append({"field": "amount", "message": "should be whole rupiah, 0 or more"})
    for key, value, limit in (("reference", reference, MAX_REFERENCE), ("basis", basis, MAX_BASIS)):
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            errors.append({"field": key, "message": f"should be text of 1 to {limit} characters"})
    if waiver is not None and (not isinstance(waiver, str) or not waiver.strip()
                               or len(waiver) > MAX_BASIS):  # fmt: skip
        errors.append({"field": "waiver", "message": f"should be text of 1 to {MAX_BASIS} chars"})
    if amount == 0 and waiver is None:
        errors.append({"field": "waiver", "message": "a bill of 0 waives the levy: give the ground "
                       "for the waiver (for example the MBR exemption)"})  # fmt: skip
    if isinstance(amount, int) and amount > 0 and waiver is not None:
        errors.append({"field": "waiver", "message": "only a bill of 0 waives the levy"})
    return errors


def issue_bill(
    ctx: Context,
    principal: Principal,
    case_id: str,
    amount: Any,
    reference: Any,
    basis: Any,
    waiver: Any = None,
) -> dict[str, Any]:
    """Bill a levy on a case (the SKRD); the new bill supersedes the last, both stay recorded."""
    errors = _bill_errors(amount, reference, basis, waiver)
    if errors:
        raise Invalid("the bill cannot be issued as given", errors)
    with ctx.uow() as uow:
        case, sop = load_case_to_change(ctx, uow, principal, case_id, "bill", lock=True)
        if not sop.fee.levy:
            raise Conflict(
                f"`{sop.key}` has no levy to bill: its fee is fixed by the SOP"
                if not sop.fee.free
                else f"`{sop.key}` is free of charge: nothing can be billed"
            )
        billers = [sop.fee.billed_by] if sop.fee.billed_by else []
        if not acting_roles(principal, sop).intersection(billers):
            uow.rollback()
            deny(
                ctx,
                principal,
                f"billing the levy of `{sop.key}` needs {_one_of(billers)} (the SOP's "
                "`fee.billed_by`)",
                case,
                action="bill",
                roles=billers,
            )
        if case.status != "open":
            raise Conflict(f"the case is closed ({case.outcome}); it can no longer be billed")
        now = ctx.clock()
        assert case.pk is not None
        bill = Bill(
            case_pk=case.pk,
            amount=amount,
            reference=reference.strip(),
            basis=basis.strip(),
            waiver=waiver.strip() if waiver is not None else None,
            billed_at=now,
            billed_by=principal.name,
        )
        uow.session.add(bill)
        superseded = case.bill["reference"] if case.bill else None
        view = bill_view(bill)
        case.bill = view
        data = {k: view[k] for k in ("amount", "reference", "basis", "waiver")}
        data["supersedes"] = superseded
        uow.record(act("case.billed", sop, case, principal, now, data, from_step=case.step))
        with stale_is_conflict(uow, None):
            uow.commit()
        return {"case_id": case.id, **view}


def list_payments(ctx: Context, principal: Principal, case_id: str) -> list[dict[str, Any]]:
    """Payments recorded on a case, oldest first."""
    with ctx.reader() as uow:
        case, _sop = load_case(ctx, uow, principal, case_id, "payments")
        rows = uow.session.execute(
            select(Payment).where(Payment.case_pk == case.pk).order_by(Payment.id)  # type: ignore[arg-type]
        ).scalars()
        return [payment_view(p, case.id) for p in rows]
