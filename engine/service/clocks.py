"""Step visits and their clocks: entering and leaving steps, timers, the service clock.

Timers are rows: each rung of the ladder due on a visit is one `sla_timer`, created in the
transaction that enters the step and deleted in the one that leaves it. Leaving deletes
the timers before the case row is updated, and the sweep locks timers before cases, so the
two always take their locks in the same order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from engine.domain.model import SOP, CalendarSpec, Step
from engine.domain.sla import (
    paused_working_seconds,
    resumed_deadline,
    rung_deadlines,
    service_deadline,
    step_deadline,
)
from engine.service.calendars import calendar_of_case, case_calendar, mark_estimated
from engine.store.tables import Case, SlaTimer, StepVisit
from engine.store.uow import UnitOfWork

SERVICE_RUNG = -1
SERVICE_BREACHED = "service_time_breached"


def service_key(case_pk: int) -> str:
    """The firing key of a case's service-time breach: it fires once per case."""
    return f"c{case_pk}:service"


def rung_key(visit_id: int, index: int) -> str:
    """The firing key of rung `index` on a step visit."""
    return f"v{visit_id}:r{index}"


def cancel_timers(
    uow: UnitOfWork, sop: SOP, case: Case, visit: StepVisit | None, service: bool
) -> None:
    """Delete the timers of a visit (and the service timer); call before changing the case.

    Only what can exist is deleted: a step without a ladder made no rung timers, and a
    case without a service deadline (or already breached) has no service timer.
    """
    if visit is not None and sop.ladder(sop.step(visit.step)):
        uow.session.execute(delete(SlaTimer).where(SlaTimer.visit_id == visit.id))
    if service and case.service_due_at is not None and SERVICE_BREACHED not in case.flags:
        uow.session.execute(
            delete(SlaTimer).where(SlaTimer.case_pk == case.pk, SlaTimer.rung == SERVICE_RUNG)
        )


def leave(
    sop: SOP, case: Case, visit: StepVisit | None, now: datetime, actor: str, via: str
) -> None:
    """End the current visit; time spent in a paused step is counted as paused."""
    if visit is None:
        return
    visit.left_at = now
    visit.left_by = actor
    visit.left_via = via
    visit.dwell_seconds = (now - visit.entered_at).total_seconds()
    # working time is the calendar's to say; stored so reports aggregate it in SQL
    calendar = calendar_of_case(case, sop)
    visit.working_seconds = paused_working_seconds(sop, visit.entered_at, now, calendar)
    if visit.paused:
        visit.paused_seconds = visit.working_seconds


def enter(
    uow: UnitOfWork,
    sop: SOP,
    case: Case,
    step: Step,
    now: datetime,
    actor: str,
    opening: bool = False,
) -> StepVisit | None:
    """Put the case in `step`: a new visit with its due instant and its ladder's timers.

    With `opening`, the case is new: its service clock starts now.
    """
    was_paused = case.paused_since is not None
    # the SOP's calendar with the deployment's register and the office's time zone
    calendar = case_calendar(uow.session, sop, case.opd)
    case.step = step.id
    case.step_role = step.role
    case.step_entered_at = now
    case.step_due_at = step_deadline(sop, step, now, calendar)
    case.escalation_level = 0
    if step.final:
        case.paused_since = None
        return None
    if opening:
        case.service_due_at = service_deadline(sop, now, calendar)
    _service_clock(uow, sop, case, step, now, was_paused, calendar)
    mark_estimated(uow.session, case)
    if case.pk is None:
        uow.session.flush()  # a new case: its row first, with everything set, in one INSERT
    if opening:
        _schedule_service(uow, case)
    assert case.pk is not None
    visit = StepVisit(
        case_pk=case.pk,
        sop=sop.key,
        step=step.id,
        role=step.role,
        paused=step.paused,
        entered_at=now,
        entered_by=actor,
        due_at=case.step_due_at,
    )
    uow.session.add(visit)
    deadlines = rung_deadlines(sop, step, now, calendar)
    if not deadlines:
        return visit  # inserted with the rest at commit: no timer needs its id now
    uow.session.flush()
    assert visit.id is not None
    for due in deadlines:
        uow.session.add(
            SlaTimer(
                due_at=due.due,
                case_pk=case.pk,
                visit_id=visit.id,
                rung=due.index,
                action=due.rung.action,
                to_role=due.rung.to,
                flag=due.rung.flag,
                key=rung_key(visit.id, due.index),
            )
        )
    return visit


def _service_clock(
    uow: UnitOfWork,
    sop: SOP,
    case: Case,
    step: Step,
    now: datetime,
    was_paused: bool,
    calendar: CalendarSpec,
) -> None:
    # the service clock stops while the case waits on the citizen and starts again, later by
    # the working time spent waiting, when it comes back
    if step.paused and not was_paused:
        case.paused_since = now
        case.service_due_frozen = case.service_due_at
        case.service_due_at = None
    elif not step.paused and was_paused:
        assert case.paused_since is not None
        waited = paused_working_seconds(sop, case.paused_since, now, calendar)
        case.paused_seconds = case.paused_seconds + waited
        frozen = case.service_due_frozen
        case.service_due_at = (
            None if frozen is None else resumed_deadline(sop, frozen, waited, calendar)
        )
        case.paused_since = None
        case.service_due_frozen = None
        _schedule_service(uow, case)


def _schedule_service(uow: UnitOfWork, case: Case) -> None:
    if case.service_due_at is None or SERVICE_BREACHED in case.flags:
        return
    assert case.pk is not None
    uow.session.add(
        SlaTimer(
            due_at=case.service_due_at,
            case_pk=case.pk,
            rung=SERVICE_RUNG,
            action="service",
            key=service_key(case.pk),
        )
    )


def flag(case: Case, *flags: str) -> None:
    """Mark a case (for the inspectorate's `flagged=true` list)."""
    new = [f for f in flags if f not in case.flags]
    if new:
        case.flags = [*case.flags, *new]
    case.flagged = True
