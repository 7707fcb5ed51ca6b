"""A case's life, decided with no database and no clock.

The rules of a case moving through its SOP live here: entering and leaving steps, the
service clock stopping while the case waits on the citizen and starting again later by the
working time it waited, the due instants, which rungs of the escalation ladder to schedule
or cancel, what a rung does when it falls due (a warning, an escalation with its extra role
and flag, the service time breached and the deemed approval that follows), and closing.

Each command takes a case's state (`CaseState`), the visit it is in (`Visit`), its SOP, the
calendar in force, an actor and an instant, and returns a `Decision`: the new state and the
typed events that say what happened. The service layer loads, decides and saves in one
transaction; the store turns the events into rows (visits, timers), and `audit_record`
turns them into the audit trail's events, in one place each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from engine.domain.calendar import calendar_for
from engine.domain.machine import DEEMED_BASIS, Fired
from engine.domain.model import SOP, CalendarSpec, Step
from engine.domain.sla import (
    paused_working_seconds,
    resumed_deadline,
    rung_deadlines,
    service_deadline,
    step_deadline,
)

SERVICE_BREACHED = "service_time_breached"
DEEMED_APPROVED = "deemed_approved"
DECISION_OVERDUE = "decision_overdue"
INSPECTORATE = "inspectorate"

# the rung numbers of the timers that are not a step's ladder
SERVICE_RUNG = -1
DECISION_RUNG = -2


@dataclass(frozen=True)
class CaseState:
    """What the rules of a case's life read and change."""

    step: str
    step_role: str | None
    step_entered_at: datetime
    step_due_at: datetime | None = None
    service_due_at: datetime | None = None
    service_due_frozen: datetime | None = None
    paused_since: datetime | None = None
    paused_seconds: float = 0.0
    escalation_level: int = 0
    status: str = "open"
    outcome: str | None = None
    closed_at: datetime | None = None
    fired_by: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    extra_roles: tuple[str, ...] = ()
    deemed_approved_at: datetime | None = None
    decision_due_at: datetime | None = None

    def flagged(self, *flags: str) -> CaseState:
        """The state with `flags` added (each once)."""
        return replace(self, flags=self.flags + tuple(f for f in flags if f not in self.flags))


@dataclass(frozen=True)
class Visit:
    """The case's stay in the step it is in now (a final step has none)."""

    step: str
    entered_at: datetime
    paused: bool


@dataclass(frozen=True)
class Rung:
    """A timer that fell due, as the rules need it: which rung, its action, and when."""

    rung: int  # the ladder's index; SERVICE_RUNG or DECISION_RUNG for the case-wide ones
    action: str  # warn | escalate | service | decision
    due: datetime
    to_role: str | None = None
    flag: str | None = None


# ---- the typed events ----------------------------------------------------------------------


@dataclass(frozen=True)
class StepLeft:
    """The current visit ended: by whom, along which transition, and the time it took."""

    step: str
    at: datetime
    by: str
    via: str
    dwell_seconds: float
    working_seconds: float
    paused: bool  # time spent in a paused step is the citizen's, counted apart


@dataclass(frozen=True)
class StepEntered:
    """A new visit began (not on a final step: a closed case has no visit)."""

    step: str
    role: str | None
    paused: bool
    at: datetime
    by: str
    due_at: datetime | None


@dataclass(frozen=True)
class RungScheduled:
    """A rung of the ladder will fall due on the visit just entered."""

    index: int
    due: datetime
    action: str
    to_role: str | None
    flag: str | None


@dataclass(frozen=True)
class RungsCancelled:
    """The rungs still pending on the visit being left are void."""

    step: str


@dataclass(frozen=True)
class ServiceTimerScheduled:
    """The case-wide service time will fall due at `due`."""

    due: datetime


@dataclass(frozen=True)
class ServiceTimerCancelled:
    """The service clock stopped (a paused or final step): its timer is void."""


@dataclass(frozen=True)
class DecisionTimerScheduled:
    """After a deemed approval, the decision must be issued by `due`."""

    due: datetime
    to_role: str | None
    flag: str | None


@dataclass(frozen=True)
class DecisionTimerCancelled:
    """The decision was issued (the case closed): its deadline is void."""


@dataclass(frozen=True)
class Opened:
    """The case was received, in its first step."""

    step: str


@dataclass(frozen=True)
class Transitioned:
    """Staff fired a transition."""

    transition: str
    from_step: str
    to_step: str
    comment: str | None


@dataclass(frozen=True)
class Closed:
    """The case reached a final step with an outcome."""

    step: str
    outcome: str | None


@dataclass(frozen=True)
class Warned:
    """A warning rung fell due: the step's role is told."""

    rung: int
    label: str
    step: str
    role: str | None
    due: datetime
    lateness: float
    flag: str | None


@dataclass(frozen=True)
class Escalated:
    """An escalation rung fell due: the case goes up to `to` as well, one level higher."""

    rung: int
    label: str
    step: str
    to: str
    due: datetime
    lateness: float
    flag: str | None


@dataclass(frozen=True)
class ServiceBreached:
    """The service time ran out; with deemed approval, the application is granted by law."""

    step: str
    due: datetime
    lateness: float
    service_time: str
    deemed_approved_at: datetime | None
    decision_due_at: datetime | None


@dataclass(frozen=True)
class DecisionOverdue:
    """After a deemed approval the decision was not issued in time: escalated."""

    step: str
    due: datetime
    lateness: float
    decision_time: str
    to: str | None
    flag: str | None


CaseEvent = (
    StepLeft
    | StepEntered
    | RungScheduled
    | RungsCancelled
    | ServiceTimerScheduled
    | ServiceTimerCancelled
    | DecisionTimerScheduled
    | DecisionTimerCancelled
    | Opened
    | Transitioned
    | Closed
    | Warned
    | Escalated
    | ServiceBreached
    | DecisionOverdue
)


@dataclass(frozen=True)
class Decision:
    """The state a command leaves the case in, and what happened, in order."""

    state: CaseState
    events: tuple[CaseEvent, ...]

    def of(self, kind: type[Any]) -> list[Any]:
        """The events of one kind, in order."""
        return [e for e in self.events if isinstance(e, kind)]


# ---- commands ------------------------------------------------------------------------------


def open_case(sop: SOP, calendar: CalendarSpec, now: datetime, actor: str) -> Decision:
    """A new case, received now in the SOP's first step: its service clock starts now."""
    first = sop.initial
    state = CaseState(step=first.id, step_role=first.role, step_entered_at=now)
    state = replace(state, service_due_at=service_deadline(sop, now, calendar))
    state, events = _enter(sop, calendar, state, first, now, actor, opening=True)
    return Decision(state, (*events, Opened(first.id)))


def fire(
    sop: SOP,
    calendar: CalendarSpec,
    state: CaseState,
    visit: Visit | None,
    fired: Fired,
    now: datetime,
    actor: str,
    comment: str | None = None,
) -> Decision:
    """Move the case along a transition the machine allowed."""
    dest = sop.step(fired.to_step)
    events: list[CaseEvent] = []
    if visit is not None and sop.ladder(sop.step(visit.step)):
        events.append(RungsCancelled(visit.step))
    stops_service = dest.final or (dest.paused and state.paused_since is None)
    if stops_service and _service_timer_pending(state):
        events.append(ServiceTimerCancelled())
    if dest.final and state.decision_due_at is not None:
        events.append(DecisionTimerCancelled())
    if visit is not None:
        working = paused_working_seconds(sop, visit.entered_at, now, calendar)
        dwell = (now - visit.entered_at).total_seconds()
        events.append(StepLeft(visit.step, now, actor, fired.transition, dwell, working,
                               visit.paused))  # fmt: skip
    fired_by = dict(state.fired_by)
    fired_by[fired.transition] = tuple(sorted({*fired_by.get(fired.transition, ()), actor}))
    state = replace(state, fired_by=fired_by)
    state, entered = _enter(sop, calendar, state, dest, now, actor)
    events += entered
    if fired.final:
        state = replace(state, status="closed", outcome=fired.outcome, closed_at=now)
    events.append(Transitioned(fired.transition, fired.from_step, fired.to_step, comment))
    if fired.final:
        events.append(Closed(fired.to_step, fired.outcome))
    return Decision(state, tuple(events))


def fire_rung(sop: SOP, state: CaseState, rung: Rung, now: datetime) -> Decision:
    """What a timer does when it falls due: warn, escalate, breach the service time, or
    escalate an overdue decision after a deemed approval."""
    lateness = round((now - rung.due).total_seconds(), 3)
    if rung.action == "decision":
        return _decision_overdue(sop, state, rung, lateness)
    if rung.action == "service":
        return _service_breached(sop, state, rung, lateness)
    step = sop.step(state.step)
    label = sop.ladder(step)[rung.rung].label
    if rung.flag == INSPECTORATE:
        state = state.flagged(INSPECTORATE)
    if rung.action == "warn":
        warned = Warned(rung.rung, label, step.id, step.role, rung.due, lateness, rung.flag)
        return Decision(state, (warned,))
    to = rung.to_role or ""
    state = replace(
        state,
        escalation_level=state.escalation_level + 1,
        extra_roles=state.extra_roles + (() if to in state.extra_roles else (to,)),
    )
    escalated = Escalated(rung.rung, label, step.id, to, rung.due, lateness, rung.flag)
    return Decision(state, (escalated,))


def _service_breached(sop: SOP, state: CaseState, rung: Rung, lateness: float) -> Decision:
    state = state.flagged(SERVICE_BREACHED, *([DEEMED_APPROVED] if sop.deemed_approval else []))
    events: list[CaseEvent] = []
    decision_due = None
    if sop.deemed_approval:
        # granted by law from the instant the service time ran out, not from the sweep's
        state = replace(state, deemed_approved_at=rung.due)
        if sop.decision_time is not None:
            decision_due = calendar_for(sop.calendar).add(rung.due, sop.decision_time)
            state = replace(state, decision_due_at=decision_due)
            to, mark = top_rung(sop)
            events.append(DecisionTimerScheduled(decision_due, to, mark))
    breached = ServiceBreached(
        state.step,
        rung.due,
        lateness,
        str(sop.service_time),
        state.deemed_approved_at if sop.deemed_approval else None,
        decision_due,
    )
    return Decision(state, (breached, *events))


def _decision_overdue(sop: SOP, state: CaseState, rung: Rung, lateness: float) -> Decision:
    to, mark = top_rung(sop)
    state = state.flagged(DECISION_OVERDUE)
    if to:
        state = replace(
            state,
            escalation_level=state.escalation_level + 1,
            extra_roles=state.extra_roles + (() if to in state.extra_roles else (to,)),
        )
    if mark == INSPECTORATE:
        state = state.flagged(INSPECTORATE)
    overdue = DecisionOverdue(state.step, rung.due, lateness, str(sop.decision_time), to, mark)
    return Decision(state, (overdue,))


def top_rung(sop: SOP) -> tuple[str | None, str | None]:
    """Where an overdue decision goes: the SOP-wide ladder's last escalation, and its flag."""
    for rung in reversed(sop.escalation):
        if rung.action == "escalate":
            return rung.to, rung.flag
    return None, None


def _service_timer_pending(state: CaseState) -> bool:
    return state.service_due_at is not None and SERVICE_BREACHED not in state.flags


def _enter(
    sop: SOP,
    calendar: CalendarSpec,
    state: CaseState,
    step: Step,
    now: datetime,
    actor: str,
    opening: bool = False,
) -> tuple[CaseState, list[CaseEvent]]:
    """Put the case in `step`: its due instant, the service clock, the ladder's rungs."""
    was_paused = state.paused_since is not None
    state = replace(
        state,
        step=step.id,
        step_role=step.role,
        step_entered_at=now,
        step_due_at=step_deadline(sop, step, now, calendar),
        escalation_level=0,
    )
    if step.final:
        return replace(state, paused_since=None), []
    events: list[CaseEvent] = []
    # the service clock stops while the case waits on the citizen and starts again, later
    # by the working time spent waiting, when it comes back
    if step.paused and not was_paused:
        state = replace(
            state,
            paused_since=now,
            service_due_frozen=state.service_due_at,
            service_due_at=None,
        )
    elif not step.paused and was_paused:
        assert state.paused_since is not None
        waited = paused_working_seconds(sop, state.paused_since, now, calendar)
        frozen = state.service_due_frozen
        state = replace(
            state,
            paused_seconds=state.paused_seconds + waited,
            service_due_at=(
                None if frozen is None else resumed_deadline(sop, frozen, waited, calendar)
            ),
            paused_since=None,
            service_due_frozen=None,
        )
        if _service_timer_pending(state):
            assert state.service_due_at is not None
            events.append(ServiceTimerScheduled(state.service_due_at))
    if opening and _service_timer_pending(state):
        assert state.service_due_at is not None
        events.append(ServiceTimerScheduled(state.service_due_at))
    events.insert(0, StepEntered(step.id, step.role, step.paused, now, actor, state.step_due_at))
    events += [
        RungScheduled(due.index, due.due, due.rung.action, due.rung.to, due.rung.flag)
        for due in rung_deadlines(sop, step, now, calendar)
    ]
    return state, events


# ---- the audit trail's view of the events ----------------------------------------------------


@dataclass(frozen=True)
class AuditRecord:
    """What an audit event says of a typed event: its kind, steps and data."""

    type: str
    from_step: str | None = None
    to_step: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    # an act of the actor's, marked when done off hours and with the request's id; the
    # record of a closing follows the act that closed, and the clock's rungs are no one's
    staff_act: bool = True


def audit_record(event: CaseEvent) -> AuditRecord | None:
    """The audit trail's record of a typed event (None: the trail does not record it)."""
    if isinstance(event, Transitioned):
        data: dict[str, Any] = {"transition": event.transition}
        if event.comment:
            data["comment"] = event.comment
        return AuditRecord("case.transitioned", event.from_step, event.to_step, data)
    if isinstance(event, Closed):
        return AuditRecord("case.closed", event.step, None, {"outcome": event.outcome},
                           staff_act=False)  # fmt: skip
    if isinstance(event, Warned | Escalated):
        data = {"due_at": event.due.isoformat(), "lateness_seconds": event.lateness,
                "rung": event.rung, "at": event.label, "step": event.step}  # fmt: skip
        if isinstance(event, Warned):
            data["role"] = event.role
        else:
            data["to"] = event.to
        if event.flag == INSPECTORATE:
            data["flag"] = INSPECTORATE
        kind = "sla.warned" if isinstance(event, Warned) else "sla.escalated"
        return AuditRecord(kind, event.step, None, data, staff_act=False)
    if isinstance(event, ServiceBreached):
        data = {"due_at": event.due.isoformat(), "lateness_seconds": event.lateness,
                "service_time": event.service_time}  # fmt: skip
        if event.deemed_approved_at is not None:
            data["deemed_approved"] = True
            data["legal_basis"] = DEEMED_BASIS
            data["deemed_approved_at"] = event.deemed_approved_at.isoformat()
            if event.decision_due_at is not None:
                data["decision_due_at"] = event.decision_due_at.isoformat()
        return AuditRecord("sla.service_breached", event.step, None, data, staff_act=False)
    if isinstance(event, DecisionOverdue):
        data = {"due_at": event.due.isoformat(), "lateness_seconds": event.lateness,
                "decision_time": event.decision_time, "legal_basis": DEEMED_BASIS}  # fmt: skip
        if event.to:
            data["to"] = event.to
        if event.flag == INSPECTORATE:
            data["flag"] = INSPECTORATE
        return AuditRecord("sla.decision_overdue", event.step, None, data, staff_act=False)
    return None
