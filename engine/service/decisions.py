"""Deemed approval (*fiktif positif*): the legal moment, and the time to issue the decision.

When the service time of a `deemed_approval` SOP runs out undecided, the application is
granted by law from that instant (UU 30/2014 Pasal 53 as amended). The case records the
instant; from then on no rejection may be fired, and with `decision_time` the decision must
be issued within that working time, or the case is escalated like an overdue step.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete

from engine.domain.audit import Event
from engine.domain.calendar import calendar_for
from engine.domain.machine import DEEMED_BASIS
from engine.domain.model import SOP
from engine.service.clocks import flag
from engine.store.tables import Case, SlaTimer
from engine.store.uow import UnitOfWork

DECISION_RUNG = -2
DECISION_OVERDUE = "decision_overdue"
INSPECTORATE = "inspectorate"


def decision_key(case_pk: int) -> str:
    """The firing key of a case's decision deadline: it fires once per case."""
    return f"c{case_pk}:decision"


def _top_rung(sop: SOP) -> tuple[str | None, str | None]:
    """Where an overdue decision goes: the SOP-wide ladder's last escalation, and its flag."""
    for rung in reversed(sop.escalation):
        if rung.action == "escalate":
            return rung.to, rung.flag
    return None, None


def deemed(uow: UnitOfWork, case: Case, sop: SOP, at: datetime) -> dict[str, Any]:
    """Record that the application is deemed granted at `at`; set the decision's deadline."""
    case.deemed_approved_at = at
    data: dict[str, Any] = {"deemed_approved_at": at.isoformat()}
    if sop.decision_time is None:
        return data
    due = calendar_for(sop.calendar).add(at, sop.decision_time)
    case.decision_due_at = due
    to, mark = _top_rung(sop)
    assert case.pk is not None
    uow.session.add(
        SlaTimer(
            due_at=due,
            case_pk=case.pk,
            rung=DECISION_RUNG,
            action="decision",
            to_role=to,
            flag=mark,
            key=decision_key(case.pk),
        )
    )
    data["decision_due_at"] = due.isoformat()
    return data


def cancel(uow: UnitOfWork, case: Case) -> None:
    """Delete the decision's timer: the decision was issued (the case closed)."""
    if case.decision_due_at is not None:
        uow.session.execute(
            delete(SlaTimer).where(SlaTimer.case_pk == case.pk, SlaTimer.rung == DECISION_RUNG)
        )


Notify = Callable[[UnitOfWork, Case, str, str, list[str], datetime], None]


def overdue(
    uow: UnitOfWork,
    case: Case,
    sop: SOP,
    common: dict[str, Any],
    holders: dict[str, list[str]],
    now: datetime,
    notify: Notify,
) -> Event:
    """The decision was not issued in time after the deemed approval: escalate the case."""
    to, mark = _top_rung(sop)
    data: dict[str, Any] = {
        **common,
        "decision_time": str(sop.decision_time),
        "legal_basis": DEEMED_BASIS,
    }
    flag(case, DECISION_OVERDUE)
    if to:
        data["to"] = to
        case.escalation_level = case.escalation_level + 1
        if to not in case.extra_roles:
            case.extra_roles = [*case.extra_roles, to]
    if mark == INSPECTORATE:
        flag(case, INSPECTORATE)
        data["flag"] = INSPECTORATE
    message = (
        f"case {case.tracking_code} ({sop.title}) is deemed granted by law and its decision "
        f"is overdue; issue it now"
    )
    notify(uow, case, "sla.decision_overdue", message, holders.get(to or case.step_role or "", []),
           now)  # fmt: skip
    return Event(
        "sla.decision_overdue",
        now,
        opd=case.opd,
        sop=case.sop,
        case_id=case.id,
        actor=None,
        from_step=case.step,
        data=data,
    )
