"""Flags on a case, and the names of the case-wide timers.

The rules of a case's clocks (entering and leaving steps, the service clock's pauses,
deadlines and rungs) are `engine.domain.case`'s; `engine.store.cases` writes what they
decide.
"""

from __future__ import annotations

from engine.domain.case import SERVICE_BREACHED, SERVICE_RUNG
from engine.store.cases import rung_key, service_key
from engine.store.tables import Case

__all__ = ["SERVICE_BREACHED", "SERVICE_RUNG", "flag", "rung_key", "service_key"]


def flag(case: Case, *flags: str) -> None:
    """Mark a case (for the inspectorate's `flagged=true` list)."""
    new = [f for f in flags if f not in case.flags]
    if new:
        case.flags = [*case.flags, *new]
    case.flagged = True
