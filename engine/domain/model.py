"""The SOP model: immutable, validated data built by `engine.domain.validator`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Literal

from engine.domain.durations import Duration
from engine.domain.errors import Problem

FieldType = Literal["string", "integer", "number", "boolean", "date"]
Outcome = Literal["completed", "rejected", "withdrawn"]
Action = Literal["warn", "escalate"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


Week = tuple[tuple[time, time] | None, ...]  # one entry per weekday, Monday first


@dataclass(frozen=True)
class DatedHours:
    """A dated period (first to last day, inclusive) with its own hours and breaks: Ramadan."""

    first: date
    last: date
    hours: Week
    breaks: Week = ()
    estimated: bool = False  # dates computed, not yet fixed by the government
    reason: str = ""


@dataclass(frozen=True)
class CalendarSpec:
    """A working calendar: time zone, hours and breaks per weekday (Monday first), holidays."""

    name: str | None  # `id-working`, `24x7`, or None for an inline calendar
    timezone: str
    # one (opening, closing) pair per weekday, Monday first; None = closed all day.
    # A closing time of 00:00 after a later opening means midnight at the end of the day.
    hours: Week
    national_holidays: bool  # Indonesia's public holidays (and cuti bersama, below)
    extra_holidays: tuple[date, ...] = ()
    # one break (start, end) per weekday, Monday first, None = no break; () = no breaks at all
    breaks: Week = ()
    # False: public holidays only, no cuti bersama (`holidays: ID-national`)
    cuti_bersama: bool = True
    # Ramadan hours apply (id-working's hours): dated by `periods`, else estimated per year
    ramadan: bool = False
    periods: tuple[DatedHours, ...] = ()  # decreed periods with their own hours
    # days the national table lists as holidays that a decree made working days again
    working_days: tuple[date, ...] = ()
    # the time zone was written in the SOP (an office's own zone does not replace it)
    zone_fixed: bool = False

    @property
    def always_open(self) -> bool:
        """True for a calendar in which every second counts (`24x7`)."""
        return (
            not self.national_holidays
            and not self.extra_holidays
            and not self.ramadan
            and not self.periods
            and not any(self.breaks)
            and all(h == (time(0), time(0)) for h in self.hours)
        )


ID_WORKING_HOURS: Week = (
    *((time(7, 30), time(16, 0)),) * 4,
    (time(7, 30), time(16, 30)),
    None,
    None,
)
ID_WORKING_BREAKS: Week = (
    *((time(12, 0), time(13, 0)),) * 4,
    (time(11, 30), time(13, 0)),
    None,
    None,
)
# Ramadan (Perpres 21/2023 and the Minister's yearly circular): 32.5 hours from 08:00
RAMADAN_HOURS: Week = (
    *((time(8, 0), time(15, 0)),) * 4,
    (time(8, 0), time(15, 30)),
    None,
    None,
)
RAMADAN_BREAKS: Week = (
    *((time(12, 0), time(12, 30)),) * 4,
    (time(11, 30), time(12, 30)),
    None,
    None,
)
ID_WORKING = CalendarSpec(
    "id-working",
    "Asia/Jakarta",
    ID_WORKING_HOURS,
    True,
    breaks=ID_WORKING_BREAKS,
    ramadan=True,
)
ALWAYS = CalendarSpec("24x7", "Asia/Jakarta", ((time(0), time(0)),) * 7, False)
BUILTIN_CALENDARS = {c.name: c for c in (ID_WORKING, ALWAYS)}


@dataclass(frozen=True)
class FieldSpec:
    """A datum the applicant supplies when a case is opened."""

    name: str
    type: FieldType = "string"
    required: bool = False
    pattern: str | None = None
    pii: bool = False


@dataclass(frozen=True)
class Requirement:
    """A document the citizen must bring (*persyaratan*)."""

    id: str
    name: str
    optional: bool = False
    # applies only when each named field holds one of its values (`when:`); () = always
    when: tuple[tuple[str, tuple[str | int | float | bool, ...]], ...] = ()

    def applies(self, fields: Mapping[str, object]) -> bool:
        """True when this requirement applies to a case with these field values."""
        return all(fields.get(name) in values for name, values in self.when)


@dataclass(frozen=True)
class Rung:
    """One rung of an escalation ladder, due `at` after entering the step."""

    action: Action
    percent: int | None = None  # `at: 75%`
    after: Duration | None = None  # `at: 2h`
    to: str | None = None
    flag: str | None = None

    @property
    def label(self) -> str:
        """How the `at` was written: `75%` or `2h`."""
        return f"{self.percent}%" if self.percent is not None else str(self.after)


@dataclass(frozen=True)
class Step:
    """A step of the SOP: who acts, in what time, and what comes out."""

    id: str
    name: str
    role: str | None = None
    sla: Duration | None = None
    clock: Literal["running", "paused"] = "running"
    output: str | None = None
    final: bool = False
    outcome: Outcome | None = None
    escalation: tuple[Rung, ...] | None = None  # None: the SOP-wide ladder applies

    @property
    def paused(self) -> bool:
        """True when the case waits on the citizen here and no clock runs."""
        return self.clock == "paused"


@dataclass(frozen=True)
class Transition:
    """A named move from one or more steps to another, with its guards."""

    name: str
    sources: tuple[str, ...]
    dest: str
    role: str | None = None  # None: the role of the step it leaves
    requires: tuple[str, ...] = ()
    comment_required: bool = False
    not_by: tuple[str, ...] = ()
    requires_payment: bool = False


@dataclass(frozen=True)
class Fee:
    """The official tariff in integer rupiah and the regulation that sets it."""

    amount: int = 0
    basis: str | None = None
    # roles that may record payments; empty: the role of the SOP's first step
    collected_by: tuple[str, ...] = ()
    # a levy: the amount is set per case by a bill (the SKRD) that `billed_by` issues
    levy: bool = False
    billed_by: str | None = None

    @property
    def free(self) -> bool:
        """True when the service is free of charge."""
        return self.amount == 0 and not self.levy


@dataclass(frozen=True)
class Charge:
    """A lawful charge besides the fee (a late-registration fine), with its legal basis."""

    id: str
    name: str
    amount: int
    basis: str


@dataclass(frozen=True)
class SOP:
    """One version of one SOP, validated."""

    key: str
    version: int
    opd: str
    title: str
    roles: dict[str, str]
    steps: tuple[Step, ...]
    transitions: tuple[Transition, ...]
    calendar: CalendarSpec = ID_WORKING
    description: str | None = None
    legal_basis: tuple[str, ...] = ()
    service_time: Duration | None = None
    fee: Fee = field(default_factory=Fee)
    fields: tuple[FieldSpec, ...] = ()
    requirements: tuple[Requirement, ...] = ()
    escalation: tuple[Rung, ...] = ()
    # an application not decided within service_time is deemed granted (fiktif positif)
    deemed_approval: bool = False
    # with deemed_approval: the time to issue the decision after the deemed moment
    decision_time: Duration | None = None
    charges: tuple[Charge, ...] = ()
    # roles held by another office's staff: role id -> that office
    role_opds: dict[str, str] = field(default_factory=dict)
    # how long personal data of a closed case is kept (`5y`, `18mo`, `30d`); None: no limit
    retention: str | None = None
    digest: str = ""  # SHA-256 of the source bytes
    # what the author may have forgotten (a field that looks personal, not marked `pii`)
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    @property
    def initial(self) -> Step:
        """The step every case starts in: the first one listed."""
        return self.steps[0]

    def step(self, step_id: str) -> Step:
        """The step with that id; KeyError when there is none."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def ladder(self, step: Step) -> tuple[Rung, ...]:
        """The escalation ladder that applies on a step (empty without an sla or when paused)."""
        if step.sla is None or step.paused or step.final:
            return ()
        return self.escalation if step.escalation is None else step.escalation

    def transitions_from(self, step_id: str) -> tuple[Transition, ...]:
        """The transitions that leave a step, in file order."""
        return tuple(t for t in self.transitions if step_id in t.sources)

    def role_for(self, transition: Transition, source: str) -> str | None:
        """Who may fire `transition` from `source`: its own role or the step's."""
        return transition.role or self.step(source).role

    @property
    def collectors(self) -> tuple[str, ...]:
        """Roles that may record payments: `fee.collected_by`, else the first step's role."""
        if self.fee.collected_by:
            return self.fee.collected_by
        return (self.initial.role,) if self.initial.role else ()

    def charge(self, charge_id: str) -> Charge | None:
        """The declared charge with that id, or None."""
        return next((c for c in self.charges if c.id == charge_id), None)

    def requirement(self, requirement_id: str) -> Requirement | None:
        """The requirement with that id, or None."""
        return next((r for r in self.requirements if r.id == requirement_id), None)

    def office_of(self, role: str | None) -> str:
        """The office whose staff hold a role: another office's, or the SOP's own."""
        return self.role_opds.get(role or "", self.opd)

    def roles_at(self, step_id: str) -> tuple[str, ...]:
        """Roles that work on a step by the SOP: the step's own, and those that may fire a
        transition from it."""
        step = self.step(step_id)
        roles = [step.role] if step.role else []
        roles += [r for t in self.transitions_from(step_id) if (r := self.role_for(t, step_id))]
        return tuple(dict.fromkeys(roles))

    def escalated_at(self, roles: Iterable[str], step_id: str) -> tuple[str, ...]:
        """Of the roles a case was escalated to, those that may act on it at this step.

        The SOP's own office's act from then on, at every step; another office's only at
        the steps that office works (escalated at Dinkes' recommendation, Dinkes' head
        does not go on to sign DPMPTSP's licence).
        """
        here = self.office_of(self.step(step_id).role)
        return tuple(r for r in roles if self.office_of(r) in (self.opd, here))

    @property
    def requirement_ids(self) -> tuple[str, ...]:
        """Ids of every requirement, in file order."""
        return tuple(r.id for r in self.requirements)
