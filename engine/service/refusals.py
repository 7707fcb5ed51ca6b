"""Refusals are evidence too: each refused attempt by a known user lands in the trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from engine.domain.audit import Event
from engine.service.context import Context
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
) -> NoReturn:
    """Record a refused attempt in the audit trail, in a transaction of its own, and raise."""
    event_data = {"status": error.status, "reason": error.detail, **(data or {})}
    with ctx.uow() as uow:
        uow.record(
            Event(
                kind,
                ctx.clock(),
                opd=case.opd if case else principal.opd,
                sop=case.sop if case else None,
                case_id=case.id if case else None,
                actor=principal.name,
                from_step=case.step if case else None,
                data=event_data,
            )
        )
        uow.commit()
    raise error


def deny(ctx: Context, principal: Principal, detail: str, **data: Any) -> NoReturn:
    """Refuse with 403 and record `access.denied`."""
    refuse(ctx, Forbidden(detail), "access.denied", principal, data=data)
