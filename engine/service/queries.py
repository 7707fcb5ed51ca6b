"""Reading: lists of cases, a case's history, the audit trail and its verification."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, false, or_, select
from sqlalchemy.sql import ColumnElement, Select

from engine.domain.audit import EVENT_TYPES
from engine.domain.validator import suggest
from engine.service.cases import acting_roles, case_view, guest_may_see, load_case
from engine.service.context import Context
from engine.service.errors import Invalid, NotFound
from engine.service.pages import check_limit, decode_cursor, encode_cursor, page
from engine.service.personal import reveal
from engine.service.refusals import deny
from engine.service.sops import sop_of
from engine.service.users import Principal
from engine.store import audit
from engine.store.tables import AuditEvent, Case, SopVersion, StepVisit, User


def event_view(row: AuditEvent) -> dict[str, Any]:
    """An audit event as the API shows it: its stored columns."""
    return audit.row_values(row)


def list_cases(
    ctx: Context,
    principal: Principal,
    *,
    sop: str | None = None,
    step: str | None = None,
    status: str | None = None,
    overdue: bool = False,
    flagged: bool = False,
    assignee: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Cases the caller may see, oldest first, filtered."""
    size = check_limit(limit)
    after = decode_cursor(cursor)
    if status is not None and status not in ("open", "closed"):
        raise Invalid("status is open or closed", [{"field": "status", "message": "open|closed"}])
    query = (
        select(Case, SopVersion.checksum)
        .join(SopVersion, (SopVersion.key == Case.sop) & (SopVersion.version == Case.sop_version))
        .where(Case.pk > after)  # type: ignore[operator]
    )
    if not principal.inspector:
        with ctx.reader() as uow:
            guest = guest_cases(uow.session, principal)
        own = Case.opd == principal.opd
        query = query.where(own if guest is None else or_(own, guest))
    if sop:
        query = query.where(Case.sop == sop)
    if step:
        query = query.where(Case.step == step)
    if status:
        query = query.where(Case.status == status)
    if flagged:
        query = query.where(Case.flagged.is_(True))  # type: ignore[attr-defined]
    if overdue:
        now = ctx.clock()
        query = query.where(
            Case.status == "open",
            or_(Case.step_due_at < now, Case.service_due_at < now),  # type: ignore[operator]
        )
    with ctx.reader() as uow:
        if assignee:
            query = _assigned_to(uow.session, query, principal, assignee)
        rows = uow.session.execute(query.order_by(Case.pk).limit(size)).all()  # type: ignore[arg-type]
        items = []
        for case, checksum in rows:
            spec = sop_of(uow.session, case.sop, case.sop_version, checksum)
            if principal.may_see_opd(case.opd) or guest_may_see(principal, spec, case):
                items.append(case_view(case, spec, principal))
    last = rows[-1][0].pk if rows else None
    listing = page(items, size, last)
    if len(rows) == size and last is not None:  # some rows may have been another office's
        listing["next_cursor"] = encode_cursor(last)
    return listing


def guest_cases(
    session: Any, principal: Principal, worked: bool = True
) -> ColumnElement[bool] | None:
    """The cases of other offices' SOPs that the caller, as their office's staff, may see:
    open at a step a role of theirs works (by the SOP, or escalated to it there) and, with
    `worked`, any they worked on; None when no SOP gives their office a role.

    It narrows in SQL what `guest_may_see` decides on each case exactly, and it is the same
    rule: per SOP version, the steps their roles work and the steps their office works
    (where an escalation to their role counts).
    """
    keys = _guest_sops(session, principal)
    if not keys:
        return None
    versions = session.execute(
        select(SopVersion.key, SopVersion.version, SopVersion.checksum).where(
            SopVersion.key.in_(keys)  # type: ignore[attr-defined]
        )
    ).all()
    at_step: list[ColumnElement[bool]] = []
    for key, version, checksum in versions:
        spec = sop_of(session, key, version, checksum)
        held = acting_roles(principal, spec)
        if not held:
            continue
        steps = [s for s in spec.steps if not s.final]
        works = [s.id for s in steps if held.intersection(spec.roles_at(s.id))]
        theirs = [s.id for s in steps if spec.office_of(s.role) == principal.opd]
        # `extra_roles` is a JSON list of role ids: a role's quoted id is that element
        escalated = or_(
            *(
                cast(Case.extra_roles, String).contains(f'"{role}"', autoescape=True)
                for role in sorted(held)
            )
        )
        at_step.append(
            and_(
                Case.sop == key,
                Case.sop_version == version,
                or_(
                    Case.step.in_(works),  # type: ignore[attr-defined]
                    and_(Case.step.in_(theirs), escalated),  # type: ignore[attr-defined]
                ),
            )
        )
    seen: list[ColumnElement[bool]] = []
    if at_step:
        seen.append(and_(Case.status == "open", or_(*at_step)))
    if worked:
        visits = select(StepVisit.case_pk).where(StepVisit.left_by == principal.name)
        seen.append(and_(Case.sop.in_(keys), Case.pk.in_(visits)))  # type: ignore[attr-defined,union-attr]
    return or_(*seen) if seen else false()


def _guest_sops(session: Any, principal: Principal) -> list[str]:
    """Keys of other offices' SOPs that may give a role to the caller's office.

    A text match narrows the search; `guest_may_see` decides on each case exactly.
    """
    if principal.opd is None or not principal.roles:
        return []
    rows = session.execute(
        select(SopVersion.key)
        .where(SopVersion.opd != principal.opd)
        .where(SopVersion.source.contains(f"opd: {principal.opd}"))  # type: ignore[attr-defined]
        .distinct()
    ).scalars()
    return list(rows)


def _assigned_to(session: Any, query: Select[Any], principal: Principal, name: str) -> Select[Any]:
    """Open cases waiting in a step whose role the named user holds, in their OPD."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None or (not principal.inspector and user.opd != principal.opd):
        raise Invalid(f"no user `{name}` here", [{"field": "assignee", "message": "unknown"}])
    own = and_(
        Case.opd == user.opd,
        Case.status == "open",
        Case.step_role.in_(user.roles or [""]),  # type: ignore[union-attr]
    )
    # and another office's cases waiting at a step the SOP gives the user's office
    guest = guest_cases(session, Principal(user.name, user.opd, frozenset(user.roles)), False)
    return query.where(own if guest is None else or_(own, guest))


def case_history(ctx: Context, principal: Principal, case_id: str) -> list[dict[str, Any]]:
    """A case's audit events, oldest first."""
    with ctx.reader() as uow:
        load_case(ctx, uow, principal, case_id, "history")
        rows = uow.session.execute(
            select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)
        ).scalars()
        return reveal(uow, principal, [event_view(r) for r in rows])


def may_read_trail(ctx: Context, principal: Principal, what: str) -> None:
    """Inspectors read every trail; OPD admins their own OPD's; nobody else."""
    if not (principal.inspector or principal.admin):
        deny(ctx, principal, f"only inspectors and OPD admins read the {what}", action=what)


@dataclass(frozen=True)
class EventFilter:
    """The filters the audit trail's readers and exporters share."""

    opd: str | None = None
    sop: str | None = None
    case: str | None = None
    actor: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def trail_query(ctx: Context, principal: Principal, filters: EventFilter) -> Select[Any]:
    """The events the caller may read under these filters (an OPD admin: their OPD's)."""
    may_read_trail(ctx, principal, "audit trail")
    if filters.type is not None and filters.type not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise Invalid(
            f"`{filters.type}` is not a kind of event sopflow writes; the kinds are: {known}",
            [{"field": "type", "message": f"one of {known}{suggest(filters.type, EVENT_TYPES)}"}],
        )
    opd = filters.opd
    if not principal.inspector:
        if opd is not None and opd != principal.opd:
            deny(ctx, principal, "an OPD admin reads only their own OPD's trail", opd=opd)
        opd = principal.opd
    query = select(AuditEvent)
    for column, value in (
        (AuditEvent.opd, opd),
        (AuditEvent.sop, filters.sop),
        (AuditEvent.case_id, filters.case),
        (AuditEvent.actor, filters.actor),
        (AuditEvent.type, filters.type),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)  # type: ignore[operator]
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)  # type: ignore[operator]
    return query


def audit_events(
    ctx: Context,
    principal: Principal,
    filters: EventFilter,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Audit events oldest first, filtered; an OPD admin sees only their OPD's."""
    query = trail_query(ctx, principal, filters).where(AuditEvent.seq > decode_cursor(cursor))
    size = check_limit(limit)
    with ctx.reader() as uow:
        rows = list(uow.session.execute(query.order_by(AuditEvent.seq).limit(size)).scalars())
        views = reveal(uow, principal, [event_view(r) for r in rows])
    return page(views, size, rows[-1].seq if rows else None)


def verify_trail(ctx: Context, principal: Principal) -> dict[str, Any]:
    """Recompute the whole hash chain and name the first event that breaks it."""
    may_read_trail(ctx, principal, "audit trail")
    with ctx.reader() as uow:
        return asdict(audit.verify(uow.session))


def track(ctx: Context, code: str) -> dict[str, Any]:
    """What a citizen holding a tracking code may know: no personal data."""
    with ctx.reader() as uow:
        row = uow.session.execute(
            select(Case, SopVersion.checksum)
            .join(
                SopVersion, (SopVersion.key == Case.sop) & (SopVersion.version == Case.sop_version)
            )
            .where(Case.tracking_code == code.strip().upper())
        ).first()
        if row is None:
            raise NotFound("no case has this tracking code; check it and try again")
        case, checksum = row
        sop = sop_of(uow.session, case.sop, case.sop_version, checksum)
    return {
        "sop": case.sop,
        "title": sop.title,
        "status": case.status,
        "outcome": case.outcome,
        "step": case.step,
        "step_name": sop.step(case.step).name,
        "received_at": case.created_at,
        "expected_by": case.service_due_at,
        "closed_at": case.closed_at,
        # the application is granted by law since then (fiktif positif)
        "deemed_approved_at": case.deemed_approved_at,
    }
