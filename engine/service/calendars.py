"""The deployment's calendar register: decrees as data, and deadlines that follow them.

Days off (a holiday added by an amended SKB, a regency's anniversary), days the national
table lists that a decree made working days again, the dates of each year's Ramadan, and
each office's time zone are rows, changed by a calendar administrator with the decree as
the reason. Each change is an audited event, and in the same transaction every open
deadline it touches is computed again: the step's due instant, its pending rungs and the
service deadline, each move an `sla.rescheduled` event. A rung that has fired stays fired.

The register is read at most every few seconds per process (REGISTER_TTL); a change made in
this process is seen at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, delete, or_, select, text, update
from sqlalchemy.orm import Session, object_session

from engine.domain.audit import Event
from engine.domain.calendar import (
    RegisterEntry,
    calendar_for,
    decree_issued,
    effective_calendar,
    national_table,
    ramadan_estimates,
)
from engine.domain.durations import Duration
from engine.domain.model import SOP, CalendarSpec
from engine.domain.sla import rung_deadlines, service_deadline, step_deadline
from engine.domain.validator import SOP_SLUG
from engine.service.context import Context
from engine.service.errors import Invalid, NotFound
from engine.service.refusals import deny
from engine.service.sops import sop_of
from engine.service.users import Principal, ensure_opd
from engine.store.tables import (
    CalendarEntry,
    CalendarZone,
    Case,
    SlaTimer,
    SopVersion,
    StepVisit,
)
from engine.store.uow import UnitOfWork

REGISTER_TTL = 2.0
MAX_REASON = 500
MAX_SPAN_DAYS = 366
SERVICE_RUNG = -1
RESCHEDULED = "sla.rescheduled"
ESTIMATED = "deadline_estimated"


@dataclass(frozen=True)
class Register:
    """The register as read: its entries and the offices' time zones."""

    entries: tuple[RegisterEntry, ...] = ()
    zones: tuple[tuple[str, str], ...] = ()
    generation: int = 0
    _effective: dict[tuple[CalendarSpec, str | None], CalendarSpec] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def zone(self, opd: str | None) -> str | None:
        """The office's own time zone, if it has one."""
        return dict(self.zones).get(opd or "")

    def calendar(self, spec: CalendarSpec, opd: str | None) -> CalendarSpec:
        """The calendar a case of office `opd` runs on (built once per spec and office)."""
        key = (spec, opd)
        found = self._effective.get(key)
        if found is None:
            found = effective_calendar(spec, self.entries, opd, self.zone(opd))
            self._effective[key] = found
        return found

    def ramadan_fixed(self, year: int) -> bool:
        """True when the register holds the government's dates of that year's Ramadan."""
        return any(e.kind == "ramadan" and e.first.year == year for e in self.entries)

    def year_status(self, year: int) -> dict[str, str]:
        """Whether a year's holidays and Ramadan are decreed or only estimated."""
        confirmed = {d for e in self.entries if e.kind == "off" and e.opd is None for d in e.days()}
        table = national_table(year)
        if not any(h.cuti_bersama for h in table):
            holidays = "missing"
        elif decree_issued(year) or all(h.day in confirmed for h in table if h.estimated):
            holidays = "decreed"
        else:
            holidays = "estimated"
        ramadan = "decreed" if self.ramadan_fixed(year) else "estimated"
        ok = holidays == "decreed" and ramadan == "decreed"
        return {"status": "ok" if ok else "estimated", "holidays": holidays, "ramadan": ramadan}


_lock = threading.Lock()
_cached: tuple[float, Register] | None = None
_generation = 0


def invalidate() -> None:
    """Forget the register read last: the next reader reads it again."""
    global _cached
    with _lock:
        _cached = None


def load_register(session: Session) -> Register:
    """The register, read at most every REGISTER_TTL seconds."""
    global _cached, _generation
    now = time.monotonic()
    with _lock:
        if _cached is not None and _cached[0] > now:
            return _cached[1]
    register = _read(session)
    with _lock:
        _generation += 1
        register = Register(register.entries, register.zones, _generation)
        _cached = (now + REGISTER_TTL, register)
    return register


def _read(session: Session) -> Register:
    # read without flushing: a case being opened is inserted once, complete, by its caller
    with session.no_autoflush:
        rows = session.execute(select(CalendarEntry).order_by(CalendarEntry.id)).scalars()  # type: ignore[arg-type]
        entries = tuple(_entry(r) for r in rows)
        zones = tuple(
            (opd, zone)
            for opd, zone in session.execute(
                select(CalendarZone.opd, CalendarZone.timezone)
            ).all()
        )
    return Register(entries, zones)


def _entry(row: CalendarEntry) -> RegisterEntry:
    return RegisterEntry(
        row.kind, row.first, row.last, row.reason, row.opd, row.cuti_bersama, row.estimated
    )


def case_calendar(session: Session | None, sop: SOP, opd: str | None) -> CalendarSpec:
    """The calendar in force for a case: its SOP's with the register's entries and zone."""
    if session is None:
        return sop.calendar
    return load_register(session).calendar(sop.calendar, opd)


def calendar_of_case(case: Case, sop: SOP) -> CalendarSpec:
    """The calendar in force for a case row that belongs to a session."""
    return case_calendar(object_session(case), sop, case.opd)


def mark_estimated(session: Session | None, case: Case) -> None:
    """Mark the case when one of its due instants lies in a year whose holidays or Ramadan
    are only estimated."""
    if session is None:
        return
    register = load_register(session)
    dues = (case.step_due_at, case.service_due_at, case.service_due_frozen)
    case.deadline_estimated = any(
        d is not None and register.year_status(d.year)["status"] != "ok" for d in dues
    )


# -- changes ------------------------------------------------------------------------------


def _may_change(ctx: Context, who: Principal, opd: str | None) -> None:
    """Refuse, and record the refusal, unless `who` keeps this part of the register."""
    if not who.calendar_admin:
        deny(ctx, who, "only a calendar administrator may change the calendar register", opd=opd)
    if who.opd is not None and opd != who.opd:
        deny(
            ctx,
            who,
            f"you keep the calendar of `{who.opd}` only; name it with `opd`"
            if opd is None
            else f"you keep the calendar of `{who.opd}`, not of `{opd}`",
            opd=opd,
        )


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise Invalid(
            "give the reason: the decree that sets it",
            [{"field": "reason", "message": "say which decree, e.g. `SKB 3 Menteri 2/2026`"}],
        )
    if len(text) > MAX_REASON:
        raise Invalid(
            "the reason is too long",
            [{"field": "reason", "message": f"at most {MAX_REASON} characters"}],
        )
    return text


def _opd(opd: str | None) -> str | None:
    if opd is not None and not SOP_SLUG.match(opd):
        raise Invalid(
            f"`{opd}` is not an office id",
            [{"field": "opd", "message": "use lowercase letters, digits and `-`"}],
        )
    return opd


def add_days(
    ctx: Context,
    who: Principal,
    first: date,
    until: date | None,
    reason: str,
    opd: str | None = None,
    cuti_bersama: bool = False,
) -> dict[str, Any]:
    """Make `first` (to `until`) non-working days, nationally or for one office."""
    last = until or first
    reason, opd = _reason(reason), _opd(opd)
    _may_change(ctx, who, opd)
    if last < first or (last - first).days >= MAX_SPAN_DAYS:
        raise Invalid(
            "the period is not one",
            [{"field": "until", "message": "give a date on or after the first, within a year"}],
        )
    now = ctx.clock()
    with ctx.uow() as uow:
        if opd is not None:
            ensure_opd(uow, opd, now)
        # a day a decree had made a working day again becomes a holiday again
        uow.session.execute(
            delete(CalendarEntry).where(
                CalendarEntry.kind == "on",  # type: ignore[arg-type]
                CalendarEntry.opd == opd if opd else CalendarEntry.opd.is_(None),  # type: ignore[union-attr]
                CalendarEntry.first >= first,  # type: ignore[arg-type]
                CalendarEntry.last <= last,  # type: ignore[arg-type]
            )
        )
        row = CalendarEntry(
            kind="off",
            first=first,
            last=last,
            opd=opd,
            reason=reason,
            cuti_bersama=cuti_bersama,
            created_at=now,
            created_by=who.name,
        )
        uow.session.add(row)
        data = {"date": first.isoformat(), "until": last.isoformat(), "reason": reason,
                "cuti_bersama": cuti_bersama}  # fmt: skip
        uow.record(Event("calendar.day_added", now, opd=opd, actor=who.name, data=data))
        moved = _reschedule(uow, now, first, last, opd, reason, who.name)
        uow.commit()
    invalidate()
    return {**data, "opd": opd, "rescheduled": moved}


def remove_day(
    ctx: Context, who: Principal, day: date, reason: str, opd: str | None = None
) -> dict[str, Any]:
    """Make a day a working day: drop it from the register's days off, or, for a holiday of
    the national table, record that a decree made it a working day."""
    reason, opd = _reason(reason), _opd(opd)
    _may_change(ctx, who, opd)
    now = ctx.clock()
    with ctx.uow() as uow:
        scope = CalendarEntry.opd == opd if opd else CalendarEntry.opd.is_(None)  # type: ignore[union-attr]
        rows = list(
            uow.session.execute(
                select(CalendarEntry).where(
                    CalendarEntry.kind == "off",  # type: ignore[arg-type]
                    scope,
                    CalendarEntry.first <= day,  # type: ignore[arg-type]
                    CalendarEntry.last >= day,  # type: ignore[arg-type]
                )
            ).scalars()
        )
        listed = opd is None and any(h.day == day for h in national_table(day.year))
        if not rows and not listed:
            raise NotFound(
                f"{day.isoformat()} is not a day off in the register"
                + (f" of `{opd}`" if opd else " nor a national holiday")
            )
        for row in rows:
            # a period loses the one day: what is left before and after stays
            if row.first < day:
                uow.session.add(_copy(row, row.first, day - timedelta(days=1)))
            if row.last > day:
                uow.session.add(_copy(row, day + timedelta(days=1), row.last))
            uow.session.delete(row)
        if listed:
            uow.session.add(
                CalendarEntry(
                    kind="on", first=day, last=day, opd=None, reason=reason,
                    created_at=now, created_by=who.name,
                )
            )  # fmt: skip
        data = {"date": day.isoformat(), "reason": reason}
        uow.record(Event("calendar.day_removed", now, opd=opd, actor=who.name, data=data))
        moved = _reschedule(uow, now, day, day, opd, reason, who.name)
        uow.commit()
    invalidate()
    return {**data, "opd": opd, "rescheduled": moved}


def _copy(row: CalendarEntry, first: date, last: date) -> CalendarEntry:
    return CalendarEntry(
        kind=row.kind, first=first, last=last, opd=row.opd, reason=row.reason,
        cuti_bersama=row.cuti_bersama, estimated=row.estimated,
        created_at=row.created_at, created_by=row.created_by,
    )  # fmt: skip


def set_ramadan(
    ctx: Context, who: Principal, year: int, first: date, last: date, reason: str
) -> dict[str, Any]:
    """Fix the dates of a year's Ramadan, as the government's sidang isbat set them."""
    reason = _reason(reason)
    _may_change(ctx, who, None)
    if first.year != year or not 28 <= (last - first).days <= 30:
        raise Invalid(
            "these are not the dates of a Ramadan",
            [{"field": "to", "message": f"give 1 Ramadan in {year} and its last day, 29 or 30 "
              "days later inclusive"}],
        )  # fmt: skip
    now = ctx.clock()
    with ctx.uow() as uow:
        old = list(
            uow.session.execute(
                select(CalendarEntry).where(
                    CalendarEntry.kind == "ramadan",  # type: ignore[arg-type]
                    CalendarEntry.first >= date(year, 1, 1),  # type: ignore[arg-type]
                    CalendarEntry.first <= date(year, 12, 31),  # type: ignore[arg-type]
                )
            ).scalars()
        )
        spans = [(first, last)] + [(r.first, r.last) for r in old]
        spans += [(p.first, p.last) for p in ramadan_estimates(year)]
        for row in old:
            uow.session.delete(row)
        uow.session.add(
            CalendarEntry(
                kind="ramadan", first=first, last=last, opd=None, reason=reason,
                created_at=now, created_by=who.name,
            )
        )  # fmt: skip
        data = {"year": year, "from": first.isoformat(), "to": last.isoformat(), "reason": reason}
        uow.record(Event("calendar.ramadan_set", now, actor=who.name, data=data))
        # the whole year: a case due in it may no longer be estimated
        lo = min([date(year, 1, 1), *(s[0] for s in spans)])
        hi = max([date(year, 12, 31), *(s[1] for s in spans)])
        moved = _reschedule(uow, now, lo, hi, None, reason, who.name)
        uow.commit()
    invalidate()
    return {**data, "rescheduled": moved}


def set_zone(ctx: Context, who: Principal, opd: str, zone: str, reason: str) -> dict[str, Any]:
    """Set an office's default time zone; its SOPs' `id-working` runs in it from now on."""
    reason, opd_id = _reason(reason), _opd(opd)
    assert opd_id is not None
    _may_change(ctx, who, opd_id)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone_ok = False
    else:
        zone_ok = zone.startswith("Asia/") or zone == "UTC"
    if not zone_ok:
        raise Invalid(
            f"`{zone}` is not a time zone",
            [{"field": "timezone", "message": "use Asia/Jakarta (WIB), Asia/Makassar (WITA) "
              "or Asia/Jayapura (WIT)"}],
        )  # fmt: skip
    now = ctx.clock()
    with ctx.uow() as uow:
        ensure_opd(uow, opd_id, now)
        row = uow.session.get(CalendarZone, opd_id)
        if row is None:
            uow.session.add(CalendarZone(opd=opd_id, timezone=zone, set_at=now, set_by=who.name))
        else:
            row.timezone, row.set_at, row.set_by = zone, now, who.name
        data = {"timezone": zone, "reason": reason}
        uow.record(Event("calendar.zone_set", now, opd=opd_id, actor=who.name, data=data))
        moved = _reschedule(uow, now, None, None, opd_id, reason, who.name)
        uow.commit()
    invalidate()
    return {"opd": opd_id, **data, "rescheduled": moved}


# -- deadlines that follow a change -------------------------------------------------------


def _reschedule(
    uow: UnitOfWork,
    now: datetime,
    first: date | None,
    last: date | None,
    opd: str | None,
    reason: str,
    actor: str,
) -> int:
    """Compute again the open deadlines a change of the days first..last (None: any day)
    may touch, with the register as it is after the change; returns how many moved.

    Set-based: the cases are read as plain rows (locked on PostgreSQL, in pk order, the
    order every writer takes them in) and written back with one executemany per table; each
    written case's `version` is bumped, so a transition that read it before fails and retries.
    """
    uow.session.flush()
    invalidate()
    register = _read(uow.session)
    c = Case.__table__.c  # type: ignore[attr-defined]
    query = (
        select(
            c.pk, c.id, c.sop, c.sop_version, c.opd, c.step, c.step_entered_at, c.step_due_at,
            c.service_due_at, c.service_due_frozen, c.created_at, c.paused_seconds,
            c.deadline_estimated, SopVersion.checksum,
        )  # fmt: skip
        .join(SopVersion, (SopVersion.key == c.sop) & (SopVersion.version == c.sop_version))
        .where(c.status == "open")
        .order_by(c.pk)
    )
    if opd is not None:
        query = query.where(c.opd == opd)
    if first is not None and last is not None:
        # a day in any zone of Indonesia starts after 15:00 UTC the day before and ends
        # before 17:00 UTC that day: a day's margin either side covers every zone
        lo = datetime.combine(first - timedelta(days=1), datetime.min.time(), UTC)
        hi = datetime.combine(last + timedelta(days=2), datetime.min.time(), UTC)
        query = query.where(
            or_(
                (c.step_due_at >= lo) & (c.step_entered_at < hi),
                (c.service_due_at >= lo) & (c.created_at < hi),
                (c.service_due_frozen >= lo) & (c.created_at < hi),
            )
        )
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Case.__table__)  # type: ignore[attr-defined]
    rows = uow.session.execute(query).all()
    timers = _timers(uow, [r.pk for r in rows])
    visits = _open_visits(uow, [r.pk for r in rows])
    deadlines = _Deadlines(uow.session, register)
    status: dict[int, bool] = {}
    case_updates: list[dict[str, Any]] = []
    visit_updates: list[dict[str, Any]] = []
    timer_updates: list[dict[str, Any]] = []
    events: list[Event] = []
    texts: dict[tuple[datetime, Any], str] = {}  # instants' texts, written once each
    for row in rows:
        new = _recompute(row, deadlines, timers.get(row.pk, ()))
        for clock, old_due, new_due in new.moves:
            events.append(_event(row, now, actor, clock, old_due, new_due, reason, texts))
        dues = (new.step_due, new.service_due, new.service_frozen)
        estimated = False
        for due in dues:
            if due is not None:
                if due.year not in status:
                    status[due.year] = register.year_status(due.year)["status"] != "ok"
                estimated = estimated or status[due.year]
        if new.moves or estimated != row.deadline_estimated:
            case_updates.append({
                "b_pk": row.pk, "step_due_at": new.step_due, "service_due_at": new.service_due,
                "service_due_frozen": new.service_frozen, "deadline_estimated": estimated,
            })  # fmt: skip
        if any(m[0] == "step" for m in new.moves) and row.pk in visits:
            visit_updates.append({"b_id": visits[row.pk], "due_at": new.step_due})
        timer_updates.extend({"b_id": i, "due_at": d} for i, d in new.timers)
    uow.record_many(events)
    _write(uow, case_updates, visit_updates, timer_updates)
    return len(events)


class _Deadlines:
    """The SOPs, calendars and due instants of one recomputation, each worked out once.

    Cases of one SOP and office entered at the same instant (a batch registered together,
    cases cloned by a migration) share their step's and rungs' due instants, and cases
    received on one day share a service deadline in days: those are computed once.
    """

    def __init__(self, session: Session, register: Register) -> None:
        self._session = session
        self._register = register
        self._sops: dict[tuple[str, int], SOP] = {}
        self._specs: dict[tuple[str, int, str | None], CalendarSpec] = {}
        self._steps: dict[tuple[Any, ...], datetime | None] = {}
        self._rungs: dict[tuple[Any, ...], dict[int, datetime]] = {}
        self._services: dict[tuple[Any, ...], datetime | None] = {}

    def sop(self, row: Any) -> SOP:
        key = (row.sop, row.sop_version)
        sop = self._sops.get(key)
        if sop is None:
            sop = self._sops[key] = sop_of(self._session, row.sop, row.sop_version, row.checksum)
        return sop

    def spec(self, row: Any) -> CalendarSpec:
        key = (row.sop, row.sop_version, row.opd)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = self._register.calendar(self.sop(row).calendar, row.opd)
        return spec

    def step(self, row: Any) -> datetime | None:
        key = (row.sop, row.sop_version, row.opd, row.step, row.step_entered_at)
        if key not in self._steps:
            sop = self.sop(row)
            self._steps[key] = step_deadline(
                sop, sop.step(row.step), row.step_entered_at, self.spec(row)
            )
        return self._steps[key]

    def rungs(self, row: Any) -> dict[int, datetime]:
        key = (row.sop, row.sop_version, row.opd, row.step, row.step_entered_at)
        found = self._rungs.get(key)
        if found is None:
            sop, entered = self.sop(row), row.step_entered_at
            found = self._rungs[key] = {
                r.index: r.due
                for r in rung_deadlines(sop, sop.step(row.step), entered, self.spec(row))
            }
        return found

    def service(self, row: Any) -> datetime | None:
        key = (row.sop, row.sop_version, row.opd, row.created_at, row.paused_seconds)
        if key not in self._services:
            self._services[key] = self._service(row)
        return self._services[key]

    def _service(self, row: Any) -> datetime | None:
        spec = self.spec(row)
        base = service_deadline(self.sop(row), row.created_at, spec)
        if base is None:
            return None
        # the time spent waiting on the citizen still moves it later (counted as it was)
        whole = round(row.paused_seconds)
        return calendar_for(spec).add(base, Duration.of_seconds(whole)) if whole > 0 else base


@dataclass
class _Recomputed:
    step_due: datetime | None
    service_due: datetime | None
    service_frozen: datetime | None
    moves: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    timers: list[tuple[int, datetime]] = field(default_factory=list)


def _recompute(row: Any, deadlines: _Deadlines, timers: Any) -> _Recomputed:
    """A case's due instants on the calendar in force now, and what moved."""
    out = _Recomputed(row.step_due_at, row.service_due_at, row.service_due_frozen)
    new_step = deadlines.step(row)
    if row.step_due_at is not None and new_step is not None:
        if new_step != row.step_due_at:
            out.moves.append(("step", row.step_due_at, new_step))
            out.step_due = new_step
        if any(rung != SERVICE_RUNG for _id, rung, _due in timers):
            # pending rungs follow; a rung that fired has no timer row and stays fired
            rungs = deadlines.rungs(row)
            for timer_id, rung, due in timers:
                if rung in rungs and rungs[rung] != due:
                    out.timers.append((timer_id, rungs[rung]))
    if row.service_due_at is None and row.service_due_frozen is None:
        return out
    new_service = deadlines.service(row)
    if new_service is None:
        return out
    if row.service_due_at is not None and new_service != row.service_due_at:
        out.moves.append(("service", row.service_due_at, new_service))
        out.service_due = new_service
        out.timers.extend((i, new_service) for i, rung, _d in timers if rung == SERVICE_RUNG)
    elif row.service_due_frozen is not None and new_service != row.service_due_frozen:
        out.moves.append(("service", row.service_due_frozen, new_service))
        out.service_frozen = new_service
    return out


def _write(
    uow: UnitOfWork,
    cases: list[dict[str, Any]],
    visits: list[dict[str, Any]],
    timers: list[dict[str, Any]],
) -> None:
    """Write the new due instants back: on PostgreSQL one UPDATE … FROM unnest(…) per table,
    elsewhere one executemany per table."""
    case_table = Case.__table__  # type: ignore[attr-defined]
    visit_table = StepVisit.__table__  # type: ignore[attr-defined]
    timer_table = SlaTimer.__table__  # type: ignore[attr-defined]
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        _write_postgres(uow, cases, visits, timers)
        return
    if cases:
        session.execute(
            update(case_table)
            .where(case_table.c.pk == bindparam("b_pk"))
            .values(
                step_due_at=bindparam("step_due_at"),
                service_due_at=bindparam("service_due_at"),
                service_due_frozen=bindparam("service_due_frozen"),
                deadline_estimated=bindparam("deadline_estimated"),
                version=case_table.c.version + 1,
            ),
            cases,
        )
    if visits:
        session.execute(
            update(visit_table)
            .where(visit_table.c.id == bindparam("b_id"))
            .values(due_at=bindparam("due_at")),
            visits,
        )
    if timers:
        session.execute(
            update(timer_table)
            .where(timer_table.c.id == bindparam("b_id"))
            .values(due_at=bindparam("due_at")),
            timers,
        )


def _write_postgres(
    uow: UnitOfWork,
    cases: list[dict[str, Any]],
    visits: list[dict[str, Any]],
    timers: list[dict[str, Any]],
) -> None:
    session = uow.session
    if cases:
        session.execute(
            text(
                "UPDATE sop_case AS c SET step_due_at = v.step_due_at, "
                "service_due_at = v.service_due_at, service_due_frozen = v.frozen, "
                "deadline_estimated = v.estimated, version = c.version + 1 "
                "FROM unnest(CAST(:pk AS integer[]), CAST(:step AS timestamptz[]), "
                "CAST(:service AS timestamptz[]), CAST(:frozen AS timestamptz[]), "
                "CAST(:estimated AS boolean[])) AS v(pk, step_due_at, service_due_at, frozen, "
                "estimated) WHERE c.pk = v.pk"
            ),
            {
                "pk": [r["b_pk"] for r in cases],
                "step": [r["step_due_at"] for r in cases],
                "service": [r["service_due_at"] for r in cases],
                "frozen": [r["service_due_frozen"] for r in cases],
                "estimated": [r["deadline_estimated"] for r in cases],
            },
        )
    for table, rows in (("step_visit", visits), ("sla_timer", timers)):
        if rows:
            session.execute(
                text(
                    f"UPDATE {table} AS t SET due_at = v.due_at FROM unnest("
                    "CAST(:id AS integer[]), CAST(:due AS timestamptz[])) AS v(id, due_at) "
                    "WHERE t.id = v.id"
                ),
                {"id": [r["b_id"] for r in rows], "due": [r["due_at"] for r in rows]},
            )


def _open_visits(uow: UnitOfWork, pks: list[int]) -> dict[int, int]:
    """The open visit's id of each case (by primary key: an executemany of updates keyed by
    anything else may be planned as a scan of every open visit per row)."""
    v = StepVisit.__table__.c  # type: ignore[attr-defined]
    out: dict[int, int] = {}
    for i in range(0, len(pks), 5000):
        chunk = pks[i : i + 5000]
        rows = uow.session.execute(
            select(v.id, v.case_pk).where(v.case_pk.in_(chunk), v.left_at.is_(None))
        ).all()
        out.update((case_pk, visit_id) for visit_id, case_pk in rows)
    return out


def _timers(uow: UnitOfWork, pks: list[int]) -> dict[int, list[tuple[int, int, datetime]]]:
    """The pending timers of the cases: (id, rung, due) per case."""
    t = SlaTimer.__table__.c  # type: ignore[attr-defined]
    out: dict[int, list[tuple[int, int, datetime]]] = {}
    for i in range(0, len(pks), 5000):
        chunk = pks[i : i + 5000]
        rows = uow.session.execute(
            select(t.id, t.case_pk, t.rung, t.due_at).where(t.case_pk.in_(chunk))
        ).all()
        for timer_id, case_pk, rung, due in rows:
            out.setdefault(case_pk, []).append((timer_id, rung, due))
    return out


def _event(
    case: Any,
    now: datetime,
    actor: str,
    clock: str,
    old: datetime,
    new: datetime,
    reason: str,
    texts: dict[tuple[datetime, Any], str],
) -> Event:
    # keyed with the zone too: equal instants in two zones are written differently
    old_text = texts.get((old, old.tzinfo)) or texts.setdefault((old, old.tzinfo), old.isoformat())
    new_text = texts.get((new, new.tzinfo)) or texts.setdefault((new, new.tzinfo), new.isoformat())
    return Event(
        RESCHEDULED,
        now,
        opd=case.opd,
        sop=case.sop,
        case_id=case.id,
        actor=actor,
        from_step=case.step,
        data={"old_due_at": old_text, "new_due_at": new_text, "reason": reason, "clock": clock},
    )


# -- reading ------------------------------------------------------------------------------


def year_view(ctx: Context, year: int, opd: str | None = None) -> dict[str, Any]:
    """The non-working days and periods of a year in force, each with its reason and whether
    it is decreed or estimated; with `opd`, that office's own days too."""
    if not 1970 <= year <= 2200:
        raise Invalid("no calendar for that year", [{"field": "year", "message": "1970-2200"}])
    with ctx.reader() as uow:
        register = _read(uow.session)
    confirmed = {d for e in register.entries if e.kind == "off" and e.opd is None for d in e.days()}
    working = {d for e in register.entries if e.kind == "on" and e.opd is None for d in e.days()}
    items: list[dict[str, Any]] = []
    for h in national_table(year):
        if h.day in working:
            continue
        estimated = h.estimated and h.day not in confirmed
        items.append({
            "date": h.day.isoformat(), "until": h.day.isoformat(),
            "kind": "cuti_bersama" if h.cuti_bersama else "holiday",
            "reason": h.name, "status": "estimated" if estimated else "decreed",
            "source": "national table", "opd": None,
        })  # fmt: skip
    for e in register.entries:
        if e.last.year < year or e.first.year > year:
            continue
        if e.opd is not None and e.opd != opd and opd != "*":
            continue
        kind = {"off": "cuti_bersama" if e.cuti_bersama else "holiday", "on": "working_day",
                "ramadan": "ramadan"}[e.kind]  # fmt: skip
        items.append({
            "date": e.first.isoformat(), "until": e.last.isoformat(), "kind": kind,
            "reason": e.reason, "status": "estimated" if e.estimated else "decreed",
            "source": "register", "opd": e.opd,
        })  # fmt: skip
    if not register.ramadan_fixed(year):
        for p in ramadan_estimates(year):
            items.append({
                "date": p.first.isoformat(), "until": p.last.isoformat(), "kind": "ramadan",
                "reason": "Ramadan: 32.5 working hours a week from 08:00 (Perpres 21/2023)",
                "status": "estimated", "source": "estimate", "opd": None,
            })  # fmt: skip
    items.sort(key=lambda i: (i["date"], i["kind"]))
    return {"year": year, **register.year_status(year), "items": items,
            "zones": {o: z for o, z in register.zones}}  # fmt: skip


def health(ctx: Context, today: date) -> dict[str, Any]:
    """Whether the current and the next year are decreed, for `/healthz` and start-up."""
    with ctx.reader() as uow:
        register = _read(uow.session)
    years = {str(y): register.year_status(y) for y in (today.year, today.year + 1)}
    ok = all(v["status"] == "ok" for v in years.values())
    return {"status": "ok" if ok else "estimated", "years": years}
