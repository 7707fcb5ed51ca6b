"""SLA clocks: when each rung of a step's ladder falls due, and the service clock's pauses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.domain.calendar import calendar_for
from engine.domain.durations import Duration
from engine.domain.model import SOP, CalendarSpec, Rung, Step


@dataclass(frozen=True)
class RungDue:
    """A rung of the ladder on one step visit, and the instant it falls due (UTC)."""

    index: int
    rung: Rung
    due: datetime


def step_deadline(
    sop: SOP, step: Step, entered: datetime, calendar: CalendarSpec | None = None
) -> datetime | None:
    """When a step's time standard runs out (None: no sla, a paused clock, a final step).

    `calendar`: the calendar in force for the case (the SOP's with the deployment's
    register); default the SOP's own.
    """
    if step.sla is None or step.paused or step.final:
        return None
    return calendar_for(calendar or sop.calendar).add(entered, step.sla)


def rung_deadlines(
    sop: SOP, step: Step, entered: datetime, calendar: CalendarSpec | None = None
) -> list[RungDue]:
    """Every rung of the ladder that applies on a step entered at `entered`.

    `at: 75%` is that share of the working time the sla allows from this entry (so it
    follows holidays and closing hours exactly); `at: 2h` is working time after entering.
    """
    ladder = sop.ladder(step)
    deadline = step_deadline(sop, step, entered, calendar)
    if not ladder or deadline is None:
        return []
    working = calendar_for(calendar or sop.calendar)
    allowed = working.working_seconds(entered, deadline)
    out = []
    for index, rung in enumerate(ladder):
        if rung.percent is not None:
            share = round(allowed * rung.percent / 100)
            due = (
                deadline
                if rung.percent == 100
                else working.add(entered, Duration.of_seconds(share))
            )
        else:
            assert rung.after is not None
            due = working.add(entered, rung.after)
        out.append(RungDue(index, rung, due))
    return out


def service_deadline(
    sop: SOP, opened: datetime, calendar: CalendarSpec | None = None
) -> datetime | None:
    """When the promised service time runs out for a case received at `opened`.

    A service time in whole days is a time limit in law: it ends at the close of the Nth
    working day after the day of receipt, which does not count (so a deemed approval never
    comes early); any other service time is added like a step's `sla`.
    """
    if sop.service_time is None:
        return None
    return calendar_for(calendar or sop.calendar).add_by_law(opened, sop.service_time)


def paused_working_seconds(
    sop: SOP, since: datetime, until: datetime, calendar: CalendarSpec | None = None
) -> float:
    """Working seconds between two instants: what a pause took off the clock."""
    return calendar_for(calendar or sop.calendar).working_seconds(since, until)


def resumed_deadline(
    sop: SOP, frozen: datetime, paused_seconds: float, calendar: CalendarSpec | None = None
) -> datetime:
    """A deadline moved later by the working time the case spent waiting on the citizen."""
    whole = round(paused_seconds)
    if whole <= 0:
        return frozen
    return calendar_for(calendar or sop.calendar).add(frozen, Duration.of_seconds(whole))
