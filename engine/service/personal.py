"""Personal data (UU 27/2022): showing it to whom may see it, access, erasure, retention,
and the record of processing.

The chain holds commitments only (engine.domain.audit); the clear values sit beside it
(engine.store.personal). Readers put them back: in clear for the case's own office, masked
for the inspectorate, `[erased]` once erased.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.domain.audit import Event, is_commitment
from engine.domain.model import SOP
from engine.domain.personal import (
    ERASED,
    Retention,
    has_personal_number,
    masked,
    personal_field,
    purpose,
)
from engine.service.cases import load_case
from engine.service.context import Context, traced
from engine.service.errors import Conflict, Invalid
from engine.service.refusals import deny
from engine.service.sops import latest_rows, parsed, sop_of
from engine.service.users import Principal
from engine.store import personal as store
from engine.store.tables import Case, SopVersion
from engine.store.uow import UnitOfWork

MAX_REASON = 500
RETENTION_ACTOR = "retention"


# ---- reading events --------------------------------------------------------------------


def _has_commitment(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_commitment(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_commitment(v) for v in value)
    return is_commitment(value)


def _fill(value: Any, held: dict[str, Any], office: bool) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, held, office) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, held, office) for v in value]
    if not is_commitment(value):
        return value
    if value not in held:
        return ERASED
    name, clear = held[value]
    if office:
        return clear
    shown = masked(name, clear)
    if isinstance(shown, str) and not name.startswith("fields."):
        # free text that quotes the applicant's own data shows it masked as well
        for other, known in held.values():
            if other.startswith("fields.") and isinstance(known, str) and len(known) > 2:
                shown = shown.replace(known, str(masked(other, known)))
    return shown


def reveal(uow: UnitOfWork, principal: Principal, views: list[dict]) -> list[dict]:
    """Events as this caller may read them: each commitment in `data` replaced by the
    value (the case's own office), its mask (the inspectorate), or `[erased]`."""
    ids = {v["case_id"] for v in views if v.get("case_id") and _has_commitment(v["data"])}
    if not ids:
        return views
    held = store.held_values(uow.session, ids)
    for view in views:
        if view.get("case_id") in held:
            office = principal.of_office(view.get("opd"))
            view["data"] = _fill(view["data"], held[view["case_id"]], office)
    return views


# ---- access: what is held about the applicant ------------------------------------------


def personal_data(ctx: Context, principal: Principal, case_id: str) -> dict[str, Any]:
    """Everything held about the applicant in a case and what each item is used for: for
    the case's own office (and through it the citizen)."""
    with ctx.reader() as uow:
        case, sop = load_case(ctx, uow, principal, case_id, "personal_data")
        if not principal.of_office(case.opd):
            uow.rollback()
            deny(
                ctx,
                principal,
                "only the case's own office reads what is held about its applicant",
                case,
                action="personal_data",
            )
        items: list[dict[str, Any]] = []
        specs = {f.name: f for f in sop.fields}
        for name, value in case.fields.items():
            spec = specs.get(name)
            personal = (spec is not None and personal_field(spec)) or has_personal_number(value)
            items.append(
                {
                    "name": f"fields.{name}",
                    "value": value,
                    "personal": personal,
                    "held_in": "case",
                    "purpose": purpose(f"fields.{name}", sop.title),
                    "recorded_at": case.created_at,
                }
            )
        for datum in store.held_items(uow.session, case.id):
            items.append(
                {
                    "name": datum.name,
                    "value": _json(datum.value),
                    "personal": True,
                    "held_in": "beside the audit trail (the trail holds its commitment)",
                    "purpose": datum.purpose,
                    "recorded_at": datum.recorded_at,
                }
            )
        return {
            "case_id": case.id,
            "sop": case.sop,
            "sop_version": case.sop_version,
            "title": sop.title,
            "opd": case.opd,
            "status": case.status,
            "closed_at": case.closed_at,
            "erased_at": case.erased_at,
            "retention": str(sop.retention) if sop.retention else None,
            "keep_until": _keep_until(case, sop),
            "legal_basis": list(sop.legal_basis),
            "items": items,
        }


def _json(text: str) -> Any:
    return json.loads(text)


def _keep_until(case: Case, sop: SOP) -> datetime | None:
    if sop.retention is None or case.closed_at is None or case.erased_at is not None:
        return None
    return Retention.parse(sop.retention).end(case.closed_at)


# ---- erasure -----------------------------------------------------------------------------


def _check_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise Invalid(
            "give the reason for the erasure",
            [{"field": "reason", "message": f"should be text of 1 to {MAX_REASON} characters"}],
        )
    if has_personal_number(reason):
        raise Invalid(
            "the reason is kept in the audit trail for good: it must not quote a NIK or a "
            "phone number",
            [{"field": "reason", "message": "holds a NIK- or phone-shaped number"}],
        )
    return reason.strip()


def erase_case(ctx: Context, principal: Principal, case_id: str, reason: Any) -> dict[str, Any]:
    """Erase a closed case's personal data, as its office's data-protection officer."""
    text = _check_reason(reason)
    with ctx.uow() as uow:
        case, sop = load_case(ctx, uow, principal, case_id, "erasure", lock=True)
        if not (principal.dpo and principal.of_office(case.opd)):
            uow.rollback()
            deny(
                ctx,
                principal,
                f"only the data-protection officer of `{case.opd}` erases its cases' "
                "personal data",
                case,
                action="erasure",
            )
        answer = _erase(ctx, uow, case, principal.name, text, "dpo")
    store.flush_deleted(ctx.engine)
    return answer


def _erase(
    ctx: Context, uow: UnitOfWork, case: Case, actor: str, reason: str, by: str
) -> dict[str, Any]:
    if case.status == "open":
        raise Conflict(
            f"the case is still open (at step `{case.step}`): its personal data is needed to "
            "serve it; it can be erased once the case is closed"
        )
    if case.erased_at is not None:
        raise Conflict(f"the case's personal data was already erased at {case.erased_at}")
    now = ctx.clock()
    removed = store.wipe(uow.session, case.id)
    fields = len(case.fields)
    case.fields = {name: ERASED for name in case.fields}
    case.erased_at = now
    uow.record(
        Event(
            "case.erased",
            now,
            opd=case.opd,
            sop=case.sop,
            case_id=case.id,
            actor=actor,
            from_step=case.step,
            data=traced({"reason": reason, "by": by, "fields": fields, "values": removed}),
        )
    )
    uow.commit()
    return {
        "case_id": case.id,
        "erased_at": now,
        "erased_by": actor,
        "reason": reason,
        "fields": fields,
        "values": removed,
    }


def erase_expired(ctx: Context, now: datetime | None = None) -> list[str]:
    """Erase every closed case whose SOP's retention has run out; each audited like an
    erasure by hand (actor `retention`). Returns the erased cases' ids."""
    now = now or ctx.clock()
    with ctx.reader() as uow:
        rows = uow.session.execute(
            select(Case.id, Case.closed_at, SopVersion.key, SopVersion.version,
                   SopVersion.checksum)
            .join(SopVersion, (SopVersion.key == Case.sop)
                  & (SopVersion.version == Case.sop_version))
            .where(Case.status == "closed", Case.erased_at.is_(None))  # type: ignore[union-attr]
            .order_by(Case.pk)  # type: ignore[arg-type]
        ).all()  # fmt: skip
        due = []
        for case_id, closed_at, key, version, checksum in rows:
            sop = sop_of(uow.session, key, version, checksum)
            if sop.retention and closed_at is not None:
                retention = Retention.parse(sop.retention)
                if retention.end(closed_at) <= now:
                    due.append((case_id, str(retention)))
    erased = []
    for case_id, retention in due:
        with ctx.uow() as uow:
            case = uow.session.execute(
                select(Case).where(Case.id == case_id).with_for_update()
            ).scalar_one()
            if case.erased_at is not None or case.status != "closed":
                continue
            reason = f"the SOP's retention of {retention} after closing has run out"
            _erase(ctx, uow, case, RETENTION_ACTOR, reason, "retention")
            erased.append(case_id)
    if erased:
        store.flush_deleted(ctx.engine)
    return erased


# ---- record of processing ---------------------------------------------------------------


def processing_record(ctx: Context, opd: str) -> list[dict[str, Any]]:
    """Per SOP of an office (its latest version): which personal data it processes, what
    for, and how long it is kept."""
    out = []
    with ctx.reader() as uow:
        for row in latest_rows(uow.session, opd):
            sop = parsed(row)
            out.append(
                {
                    "sop": sop.key,
                    "version": sop.version,
                    "title": sop.title,
                    "personal_fields": [
                        {"name": f.name, "marked_pii": f.pii} for f in sop.fields
                        if personal_field(f)
                    ],
                    "free_text": "officers' comments on transitions (may hold personal data)",
                    "purpose": f"to provide the public service `{sop.title}` and keep its "
                    "record for the inspectorate",
                    "legal_basis": list(sop.legal_basis),
                    "retention": str(sop.retention) if sop.retention else None,
                }
            )  # fmt: skip
    return out

