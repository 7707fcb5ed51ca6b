"""SLA clocks: when each rung of a step's ladder falls due, and the service clock's pauses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.domain.calendar import calendar_for
from engine.domain.durations import Duration
from engine.domain.model import SOP, Rung, Step


@dataclass(frozen=True)
class RungDue:
    """A rung of the ladder on one step visit, and the instant it falls due (UTC)."""

    index: int
    rung: Rung
    due: datetime


def step_deadline(sop: SOP, step: Step, entered: datetime) -> datetime | None:
    """When a step's time standard runs out (None: no sla, a paused clock, a final step)."""
    if step.sla is None or step.paused or step.final:
        return None
    return calendar_for(sop.calendar).add(entered, step.sla)


def rung_deadlines(sop: SOP, step: Step, entered: datetime) -> list[RungDue]:
    """Every rung of the ladder that applies on a step entered at `entered`.

    `at: 75%` is that share of the working time the sla allows from this entry (so it
    follows holidays and closing hours exactly); `at: 2h` is working time after entering.
    """
    ladder = sop.ladder(step)
    deadline = step_deadline(sop, step, entered)
    if not ladder or deadline is None:
        return []
    calendar = calendar_for(sop.calendar)
    allowed = calendar.working_seconds(entered, deadline)
    out = []
    for index, rung in enumerate(ladder):
        if rung.percent is not None:
            share = round(allowed * rung.percent / 100)
            due = (
                deadline
                if rung.percent == 100
                else calendar.add(entered, Duration.of_seconds(share))
            )
        else:
            assert rung.after is not None
            due = calendar.add(entered, rung.after)
        out.append(RungDue(index, rung, due))
    return out


def service_deadline(sop: SOP, opened: datetime) -> datetime | None:
    """When the promised service time runs out for a case opened at `opened`."""
    if sop.service_time is None:
        return None
    return calendar_for(sop.calendar).add(opened, sop.service_time)


def paused_working_seconds(sop: SOP, since: datetime, until: datetime) -> float:
    """Working seconds between two instants: what a pause took off the clock."""
    return calendar_for(sop.calendar).working_seconds(since, until)


def resumed_deadline(sop: SOP, frozen: datetime, paused_seconds: float) -> datetime:
    """A deadline moved later by the working time the case spent waiting on the citizen."""
    whole = round(paused_seconds)
    if whole <= 0:
        return frozen
    return calendar_for(sop.calendar).add(frozen, Duration.of_seconds(whole))
