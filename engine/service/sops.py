"""Publishing SOP versions and reading them back."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from engine.domain.audit import Event
from engine.domain.diagram import mermaid
from engine.domain.durations import Duration
from engine.domain.errors import DefinitionError
from engine.domain.lru import LRU
from engine.domain.model import SOP
from engine.domain.validator import load_sop
from engine.service.context import Context, traced
from engine.service.errors import Conflict, Invalid, NotFound
from engine.service.refusals import deny, refuse
from engine.service.users import Principal, ensure_opd
from engine.store.tables import SopVersion

# parsed SOP versions by (key, version, checksum)
_cache: LRU[tuple[str, int, str], SOP] = LRU(512)


def parsed(row: SopVersion) -> SOP:
    """The validated model of a published version, parsed once per process."""
    key = (row.key, row.version, row.checksum)
    found = _cache.get(key)
    if found is not None:
        return found
    return _cache.put(key, load_sop(row.source.encode(), f"{row.key} v{row.version}"))


def sop_of(session: Session, key: str, version: int, checksum: str) -> SOP:
    """The model of a published version, reading its source only on a cache miss."""
    found = _cache.get((key, version, checksum))
    if found is not None:
        return found
    row = session.get(SopVersion, (key, version))
    if row is None:
        raise LookupError(f"SOP `{key}` version {version} is not published")
    return parsed(row)


def duration_text(d: Duration | None) -> str | None:
    """A duration as the SOP wrote it (`14d`, `1d 4h`)."""
    return None if d is None else str(d)


def sop_view(sop: SOP, row: SopVersion) -> dict[str, Any]:
    """An SOP version as the API shows it to staff and the inspectorate."""
    calendar: Any = sop.calendar.name or {
        "timezone": sop.calendar.timezone,
        "holidays": (
            ("ID" if sop.calendar.cuti_bersama else "ID-national")
            if sop.calendar.national_holidays
            else "none"
        ),
        "extra_holidays": [d.isoformat() for d in sop.calendar.extra_holidays],
    }
    return {
        "sop": sop.key,
        "version": sop.version,
        "opd": sop.opd,
        "title": sop.title,
        "description": sop.description,
        "legal_basis": list(sop.legal_basis),
        "service_time": duration_text(sop.service_time),
        "fee": {"amount": sop.fee.amount, "basis": sop.fee.basis},
        "calendar": calendar,
        "roles": dict(sop.roles),
        "fields": [
            {"name": f.name, "type": f.type, "required": f.required, "pii": f.pii}
            for f in sop.fields
        ],
        "requirements": [
            {
                "id": r.id,
                "name": r.name,
                "optional": r.optional,
                # asked only of applications whose field holds one of these values
                "when": {name: list(values) for name, values in r.when} or None,
            }
            for r in sop.requirements
        ],
        "steps": [
            {
                "id": s.id,
                "name": s.name,
                "role": s.role,
                "sla": duration_text(s.sla),
                "clock": s.clock,
                "output": s.output,
                "final": s.final,
                "outcome": s.outcome,
            }
            for s in sop.steps
        ],
        "transitions": [
            {
                "name": t.name,
                "from": list(t.sources),
                "to": t.dest,
                "role": t.role,
                "requires": list(t.requires),
                "comment_required": t.comment_required,
                "not_by": list(t.not_by),
                "requires_payment": t.requires_payment,
            }
            for t in sop.transitions
        ],
        "checksum": row.checksum,
        "published_at": row.published_at,
        "published_by": row.published_by,
    }


def publish_sop(ctx: Context, principal: Principal, raw: bytes) -> tuple[dict[str, Any], bool]:
    """Publish an SOP file for the admin's OPD; returns its view and whether it is new."""
    if not principal.admin or principal.inspector:
        deny(ctx, principal, "only an OPD admin may publish SOPs", action="publish_sop")
    try:
        sop = load_sop(raw, "sop.yaml")
    except DefinitionError as e:
        raise Invalid(
            f"the SOP file has {len(e.problems)} problem(s)",
            [{"line": p.line, "column": p.column, "message": p.message} for p in e.problems],
        ) from None
    if sop.opd != principal.opd:
        deny(
            ctx,
            principal,
            f"this SOP belongs to `{sop.opd}`; you publish for `{principal.opd}`",
            opd=sop.opd,
            sop=sop.key,
            action="publish_sop",
        )
    checksum = hashlib.sha256(raw).hexdigest()
    now = ctx.clock()
    with ctx.uow() as uow:
        s = uow.session
        existing = s.get(SopVersion, (sop.key, sop.version))
        if existing is not None:
            if existing.checksum == checksum:
                return sop_view(sop, existing), False
            raise Conflict(
                f"`{sop.key}` version {sop.version} is already published with other content; "
                "publish the change as a new version"
            )
        owner = s.execute(select(SopVersion.opd).where(SopVersion.key == sop.key)).first()
        if owner is not None and owner[0] != sop.opd:
            raise Conflict(f"the SOP key `{sop.key}` belongs to another OPD; choose another key")
        ensure_opd(uow, sop.opd, now)
        row = SopVersion(
            key=sop.key,
            version=sop.version,
            opd=sop.opd,
            title=sop.title,
            source=raw.decode(),
            checksum=checksum,
            published_at=now,
            published_by=principal.name,
        )
        s.add(row)
        uow.record(
            Event(
                "sop.published",
                now,
                opd=sop.opd,
                sop=sop.key,
                actor=principal.name,
                data=traced({"version": sop.version, "checksum": checksum, "title": sop.title}),
            )
        )
        uow.commit()
    return sop_view(sop, row), True


def latest_rows(session: Session, opd: str | None = None) -> list[SopVersion]:
    """The latest published version of every SOP (of one OPD), by key."""
    newest = (
        select(SopVersion.key, func.max(SopVersion.version).label("version"))
        .group_by(SopVersion.key)
        .subquery()
    )
    query = select(SopVersion).join(
        newest, (SopVersion.key == newest.c.key) & (SopVersion.version == newest.c.version)
    )
    if opd is not None:
        query = query.where(SopVersion.opd == opd)
    return list(session.execute(query.order_by(SopVersion.key)).scalars())


def find_row(session: Session, key: str, version: int | None = None) -> SopVersion | None:
    """A published version, or the latest one when `version` is None."""
    query = select(SopVersion).where(SopVersion.key == key)
    if version is not None:
        query = query.where(SopVersion.version == version)
    return session.execute(query.order_by(SopVersion.version.desc()).limit(1)).scalar_one_or_none()


def list_sops(ctx: Context, principal: Principal, opd: str | None = None) -> list[dict[str, Any]]:
    """Latest version of each SOP the caller may see (`opd` filters)."""
    if not principal.inspector:
        if opd is not None and opd != principal.opd:
            return []
        opd = principal.opd
    with ctx.reader() as uow:
        return [sop_view(parsed(row), row) for row in latest_rows(uow.session, opd)]


def get_sop(
    ctx: Context, principal: Principal | None, key: str, version: int | None = None
) -> tuple[SOP, SopVersion]:
    """A published SOP version the caller may see (any, for None: the public)."""
    with ctx.reader() as uow:
        row = find_row(uow.session, key, version)
    what = f"`{key}`" + (f" version {version}" if version is not None else "")
    if row is None:
        raise NotFound(f"no published SOP {what}")
    if principal is not None and not principal.may_see_opd(row.opd):
        # the SOP is public (/public/sops): saying whose it is reveals nothing
        refuse(ctx, NotFound(f"`{key}` belongs to `{row.opd}`; you read the SOPs of "
                             f"`{principal.opd}` (every office's standard is at /public/sops)"),
               "access.denied", principal, data={"action": "read_sop"}, opd=row.opd,
               sop=key)  # fmt: skip
    return parsed(row), row


def sop_diagram(ctx: Context, principal: Principal, key: str) -> str:
    """The latest version's state machine as Mermaid text."""
    sop, _row = get_sop(ctx, principal, key)
    return mermaid(sop)


def public_view(sop: SOP) -> dict[str, Any]:
    """The service standard a citizen reads: requirements, procedure, time, fee."""
    return {
        "sop": sop.key,
        "version": sop.version,
        "title": sop.title,
        "opd": sop.opd,
        "description": sop.description,
        "legal_basis": list(sop.legal_basis),
        "requirements": [
            {
                "id": r.id,
                "name": r.name,
                "optional": r.optional,
                # asked only of applications whose field holds one of these values
                "when": {name: list(values) for name, values in r.when} or None,
            }
            for r in sop.requirements
        ],
        "steps": [
            {
                "id": s.id,
                "name": s.name,
                "officer": sop.roles.get(s.role) if s.role else None,
                "time_standard": duration_text(s.sla),
                "waits_on_applicant": s.paused,
                "output": s.output,
            }
            for s in sop.steps
            if not s.final
        ],
        "outcomes": [
            {"id": s.id, "name": s.name, "outcome": s.outcome} for s in sop.steps if s.final
        ],
        "service_time": duration_text(sop.service_time),
        "fee": {
            "amount": sop.fee.amount,
            "basis": sop.fee.basis,
            "free": sop.fee.free,
            # a levy is billed per case (the SKRD) by the regulation in `basis`
            "levy": sop.fee.levy,
        },
        "charges": [
            {"id": c.id, "name": c.name, "amount": c.amount, "basis": c.basis}
            for c in sop.charges
        ],
        "deemed_approval": sop.deemed_approval,
        "decision_time": duration_text(sop.decision_time),
    }


def public_sops(ctx: Context) -> list[dict[str, Any]]:
    """The service standard of every published SOP's latest version."""
    with ctx.reader() as uow:
        return [public_view(parsed(row)) for row in latest_rows(uow.session)]
