"""Refusals are evidence too: each refused attempt by a known user lands in the trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from engine.domain.audit import Event
from engine.service.context import Context, traced
from engine.service.errors import Forbidden, ServiceError
from engine.service.users import Principal
from engine.store.tables import Case


def refuse(
    ctx: Context,
    error: ServiceError,
    kind: str,
    principal: Principal,
    case: Case | None = None,
    data: Mapping[str, Any] | None = None,
    opd: str | None = None,
    sop: str | None = None,
) -> NoReturn:
    """Record a refused attempt in the audit trail, in a transaction of its own, and raise.

    The event is filed under the office whose case or SOP was reached for (`case`, or
    `opd` and `sop`), so that office's admin sees attempts on it; else the caller's.
    """
    # the roles the caller held: what the attempt was made with, beside what it needed
    held = {"actor_roles": sorted(principal.roles)}
    event_data = traced({"status": error.status, "reason": error.detail, **held, **(data or {})})
    with ctx.uow() as uow:
        uow.record(
            Event(
                kind,
                ctx.clock(),
                opd=case.opd if case else opd or principal.opd,
                sop=case.sop if case else sop,
                case_id=case.id if case else None,
                actor=principal.name,
                from_step=case.step if case else None,
                data=event_data,
            )
        )
        uow.commit()
    raise error


def deny(
    ctx: Context,
    principal: Principal,
    detail: str,
    case: Case | None = None,
    opd: str | None = None,
    sop: str | None = None,
    **data: Any,
) -> NoReturn:
    """Refuse with 403 and record `access.denied` (filed as `refuse` files it)."""
    refuse(ctx, Forbidden(detail), "access.denied", principal, case, data, opd, sop)
