"""A stale `If-Match` answered with what changed: the case's current version and the events
since the version the client named (timer firings and others' payments move it too)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.service.errors import PreconditionFailed
from engine.store.tables import AuditEvent, Case
from engine.store.uow import UnitOfWork

MAX_CHANGES = 50


def stale_version(uow: UnitOfWork, case: Case, sent: int) -> PreconditionFailed:
    """The 412 for a write that named version `sent` of a case now at another version."""
    rows = uow.session.execute(
        select(AuditEvent.type, AuditEvent.at, AuditEvent.actor, AuditEvent.case_version)
        .where(AuditEvent.case_id == case.id, AuditEvent.case_version > sent)
        .order_by(AuditEvent.seq)
        .limit(MAX_CHANGES)
    ).all()
    changed: list[dict[str, Any]] = [
        {"type": kind, "at": at, "actor": actor, "version": version}
        for kind, at, actor, version in rows
    ]
    if changed:
        kinds = ", ".join(dict.fromkeys(c["type"] for c in changed))
        since = f"; since version {sent}: {kinds}"
    else:
        since = ""
    return PreconditionFailed(
        f"the case is at version {case.version}, not {sent}{since}; read it again and, if "
        f"the step still holds what you meant, retry with If-Match: \"{case.version}\"",
        extensions={"current_version": case.version, "changed": changed},
    )
