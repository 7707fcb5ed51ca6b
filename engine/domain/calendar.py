"""Working time: which instants count, and the deadline N working units after a start.

Pure: the caller passes every instant in; nothing here reads the wall clock. Inputs may be in
any time zone, outputs are UTC; local time exists only inside this module.

A working day is its opening hours less its break, so a day may have two working spans.
Dated periods (Ramadan) bring their own hours and breaks; where the deployment's calendar
register has not fixed a year's Ramadan, its dates are estimated from the Umm al-Qura
conversion, and said to be estimated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from hijridate import Gregorian, Hijri

from engine.domain.durations import UNIT_SECONDS, Duration
from engine.domain.model import (
    RAMADAN_BREAKS,
    RAMADAN_HOURS,
    CalendarSpec,
    DatedHours,
    Week,
)

_ONE_DAY = timedelta(days=1)
_DAY_SECONDS = 86400
_ESTIMATED = "(estimated)"

Span = tuple[datetime, datetime]  # a working [opening, closing) interval, both UTC


@dataclass(frozen=True)
class Holiday:
    """A day of the national table: its name, whether it is cuti bersama, and if estimated."""

    day: date
    name: str
    cuti_bersama: bool
    estimated: bool


@lru_cache(maxsize=64)
def national_table(year: int) -> tuple[Holiday, ...]:
    """Indonesia's public holidays and cuti bersama of one year, from the `holidays` package."""
    # building the holiday table is slow (lunar calendars), so each year is built once;
    # "government" is the category that carries the cuti bersama of the SKB 3 Menteri
    public = holidays.country_holidays("ID", categories=("public",), years=year)
    joint = holidays.country_holidays("ID", categories=("government",), years=year)
    days = {d: Holiday(d, n, False, _ESTIMATED in n) for d, n in public.items()}
    for d, n in joint.items():
        days.setdefault(d, Holiday(d, n, True, _ESTIMATED in n))
    return tuple(sorted(days.values(), key=lambda h: h.day))


@lru_cache(maxsize=128)
def _national_holidays(year: int, cuti_bersama: bool = True) -> frozenset[date]:
    """The non-working days of the national table (without cuti bersama on request)."""
    return frozenset(h.day for h in national_table(year) if cuti_bersama or not h.cuti_bersama)


def decree_issued(year: int) -> bool:
    """True when the installed table carries a decree for the year: its cuti bersama, and no
    holiday whose date is only estimated."""
    table = national_table(year)
    return any(h.cuti_bersama for h in table) and not any(h.estimated for h in table)


@lru_cache(maxsize=64)
def ramadan_estimates(year: int) -> tuple[DatedHours, ...]:
    """Ramadan periods starting in a year, estimated: 1 Ramadan by the Umm al-Qura tables, its
    last day the eve of Idul Fitri in the national table when that falls near, else of
    1 Syawal by the same tables. Empty outside the tables' range."""
    try:
        first_hijri = Gregorian(year, 1, 1).to_hijri().year
        out = []
        for hijri_year in (first_hijri, first_hijri + 1):
            first = Hijri(hijri_year, 9, 1).to_gregorian()
            if first.year != year:
                continue
            syawal = Hijri(hijri_year, 10, 1).to_gregorian()
            eid = [
                h.day
                for y in {syawal.year}
                for h in national_table(y)
                if not h.cuti_bersama
                and "Eid al-Fitr" in h.name
                and abs((h.day - syawal).days) <= 2
            ]
            last = (min(eid) if eid else syawal) - _ONE_DAY
            out.append(
                DatedHours(
                    date(first.year, first.month, first.day),
                    last,
                    RAMADAN_HOURS,
                    RAMADAN_BREAKS,
                    estimated=True,
                    reason="Ramadan (estimated)",
                )
            )
        return tuple(out)
    except (ValueError, OverflowError):
        return ()


def ramadan_periods(spec: CalendarSpec, year: int) -> tuple[DatedHours, ...]:
    """The Ramadan periods of a year for a calendar: the register's, else the estimates."""
    if not spec.ramadan:
        return ()
    fixed = tuple(p for p in spec.periods if p.first.year == year)
    return fixed or ramadan_estimates(year)


def _seconds_of_day(t: time) -> int:
    """Seconds from midnight to a wall-clock time (whole seconds)."""
    return t.hour * 3600 + t.minute * 60 + t.second


def _day_length(hours: tuple[time, time]) -> int:
    """Nominal length in seconds of one day's opening hours."""
    opening, closing = hours
    end = _DAY_SECONDS if closing == time(0) else _seconds_of_day(closing)
    return end - _seconds_of_day(opening)


def nominal_day_seconds(hours: Iterable[tuple[time, time] | None]) -> int:
    """Length in seconds of the longest day in a week of opening hours (0 when none open)."""
    return max((_day_length(h) for h in hours if h is not None), default=0)


def week_seconds(hours: Week, breaks: Week = ()) -> int:
    """Working seconds in a week of opening hours less its breaks."""
    total = sum(_day_length(h) for h in hours if h is not None)
    return total - sum(_day_length(b) for b in breaks if b is not None)


def _utc(instant: datetime) -> datetime:
    """The instant in UTC; ValueError when it is naive."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{instant!r} has no time zone; pass a timezone-aware datetime")
    return instant.astimezone(UTC)


def _merge(intervals: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping union of intervals (empty ones dropped)."""
    merged: list[Span] = []
    for lo, hi in sorted(i for i in intervals if i[0] < i[1]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _check_week(name: str | None, hours: Week, breaks: Week) -> None:
    for day, span in enumerate(hours):
        # 00:00 as closing means the end of the day; any other closing must follow opening
        if span is not None and span[1] != time(0) and span[1] <= span[0]:
            raise ValueError(f"calendar `{name}`: closing {span[1]} is not after opening {span[0]}")
        pause = breaks[day] if breaks else None
        if pause is None:
            continue
        if span is None or not (span[0] < pause[0] < pause[1]) or (
            span[1] != time(0) and pause[1] >= span[1]
        ):
            raise ValueError(
                f"calendar `{name}`: break {pause[0]}-{pause[1]} is not inside its day"
            )


class WorkingCalendar:
    """A CalendarSpec made usable: working instants, deadlines and elapsed working time."""

    def __init__(self, spec: CalendarSpec) -> None:
        if len(spec.hours) != 7 or (spec.breaks and len(spec.breaks) != 7):
            raise ValueError(f"calendar `{spec.name}` needs hours for 7 weekdays")
        _check_week(spec.name, spec.hours, spec.breaks)
        for period in spec.periods:
            _check_week(spec.name, period.hours, period.breaks)
        if all(h is None for h in spec.hours):
            raise ValueError(f"calendar `{spec.name}` has no working hours on any day")
        try:
            self._zone = ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"`{spec.timezone}` is not a known time zone") from exc
        self.spec = spec
        self._extra = frozenset(spec.extra_holidays)
        self._working = frozenset(spec.working_days)
        # every second counts: plain elapsed-time arithmetic, exact and fast
        self._always = spec.always_open
        self._spans: dict[date, tuple[Span, ...]] = {}

    @property
    def nominal_day_seconds(self) -> int:
        """Length in seconds of the longest working day (for ordering ladders)."""
        return nominal_day_seconds(self.spec.hours)

    def period(self, d: date) -> DatedHours | None:
        """The dated period (Ramadan) a day falls in, if any."""
        for period in (*self.spec.periods, *ramadan_periods(self.spec, d.year)):
            if period.first <= d <= period.last:
                return period
        return None

    def week(self, d: date) -> tuple[Week, Week]:
        """The hours and breaks in force on a day: its period's, else the calendar's."""
        period = self.period(d) if (self.spec.periods or self.spec.ramadan) else None
        if period is not None:
            return period.hours, period.breaks
        return self.spec.hours, self.spec.breaks

    def is_working_day(self, d: date) -> bool:
        """True when the day has opening hours and is no holiday."""
        if self.week(d)[0][d.weekday()] is None or d in self._extra:
            return False
        if not self.spec.national_holidays or d in self._working:
            return True
        return d not in _national_holidays(d.year, self.spec.cuti_bersama)

    def is_working(self, instant: datetime) -> bool:
        """True when the instant lies inside a working span of a working day."""
        at = _utc(instant)
        return any(lo <= at < hi for lo, hi in self._day_spans(self._local_date(at)))

    def next_opening(self, instant: datetime) -> datetime:
        """The instant itself when it is working time, else the next opening (UTC)."""
        at = _utc(instant)
        day = self._local_date(at)
        while True:
            for lo, hi in self._day_spans(day):
                if at < hi:
                    return max(at, lo)
            day += _ONE_DAY

    def add(self, start: datetime, duration: Duration) -> datetime:
        """The deadline: `duration` of working time after `start`, parts left to right (UTC)."""
        at = _utc(start)
        applied = False
        for n, unit in duration.parts:
            if n < 0:
                raise ValueError(f"duration `{duration}` is negative")
            if n == 0:
                continue  # a zero part moves nothing, not even to the next opening
            if unit == "d":
                at = self._add_days(at, n)
            else:
                at = self._add_seconds(at, n * UNIT_SECONDS[unit])
            applied = True
        return at if applied else self.next_opening(at)

    def add_by_law(self, received: datetime, duration: Duration) -> datetime:
        """A time limit as the law counts it: given in whole days, it ends at the close of the
        Nth working day after the day of receipt (that day does not count); any other
        duration is added as `add` does."""
        at = _utc(received)
        days = duration.days
        if days <= 0 or duration.seconds or self._always:
            return self.add(at, duration)
        _day, spans = self._nth_working_day(self._local_date(at), days)
        return spans[-1][1]

    def working_seconds(
        self, start: datetime, end: datetime, paused: Iterable[tuple[datetime, datetime]] = ()
    ) -> float:
        """Working seconds between two instants, leaving out time inside `paused` intervals."""
        lo, hi = _utc(start), _utc(end)
        if hi <= lo:
            return 0.0
        total = self._worked(lo, hi)
        # clipped to the range and merged, pauses are disjoint, so subtracting never double-counts
        clipped = ((max(_utc(a), lo), min(_utc(b), hi)) for a, b in paused)
        for p_lo, p_hi in _merge(clipped):
            total -= self._worked(p_lo, p_hi)
        return total.total_seconds()

    # -- internals: every datetime below is UTC ------------------------------------------

    def _local_date(self, at: datetime) -> date:
        """The local calendar date of a UTC instant."""
        return at.astimezone(self._zone).date()

    def _day_spans(self, day: date) -> tuple[Span, ...]:
        """The working spans of a local date in UTC: none on a day off, two around a break."""
        cached = self._spans.get(day)
        if cached is not None:
            return cached
        spans: tuple[Span, ...] = ()
        hours, breaks = self.week(day)
        opening_closing = hours[day.weekday()]
        if opening_closing is not None and self.is_working_day(day):
            opening, closing = opening_closing
            close_day = day + _ONE_DAY if closing == time(0) else day
            lo = datetime.combine(day, opening, self._zone).astimezone(UTC)
            hi = datetime.combine(close_day, closing, self._zone).astimezone(UTC)
            pause = breaks[day.weekday()] if breaks else None
            if pause is None:
                spans = ((lo, hi),)
            else:
                b_lo = datetime.combine(day, pause[0], self._zone).astimezone(UTC)
                b_hi = datetime.combine(day, pause[1], self._zone).astimezone(UTC)
                spans = ((lo, b_lo), (b_hi, hi))
        if len(self._spans) > 20000:
            self._spans.clear()  # bounded: a long-running process meets many days
        self._spans[day] = spans
        return spans

    def _add_seconds(self, at: datetime, seconds: int) -> datetime:
        """The instant at which `seconds` (> 0) working seconds after `at` have elapsed."""
        if self._always:
            return at + timedelta(seconds=seconds)
        remaining = timedelta(seconds=seconds)
        day = self._local_date(at)
        while True:  # one turn per calendar day: whole spans are subtracted at once
            for lo, hi in self._day_spans(day):
                if at < hi:
                    begin = max(at, lo)
                    available = hi - begin
                    # `<=`: a count reached exactly at closing ends there, not at the next opening
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += _ONE_DAY

    def _nth_working_day(self, day: date, days: int) -> tuple[date, tuple[Span, ...]]:
        """The `days`-th (> 0) working day after `day`, with its working spans."""
        spans: tuple[Span, ...] = ()
        while days:
            day += _ONE_DAY
            spans = self._day_spans(day)
            if spans:
                days -= 1
        return day, spans

    def _add_days(self, at: datetime, days: int) -> datetime:
        """Same local clock time on the `days`-th (> 0) working day after the start's day."""
        if self._always:
            return at + days * _ONE_DAY
        start = self.next_opening(at).astimezone(self._zone)
        clock = start.time()
        day, spans = self._nth_working_day(start.date(), days)
        wanted = datetime.combine(day, clock, self._zone).astimezone(UTC)
        # a day that opens later or closes earlier than the clock time clamps it into its
        # hours; a clock time inside the day's break moves to the end of the break
        for lo, hi in spans:
            if wanted < lo:
                return lo
            if wanted <= hi:
                return wanted
        return spans[-1][1]

    def _worked(self, lo: datetime, hi: datetime) -> timedelta:
        """Working time inside [lo, hi], as an exact timedelta."""
        if self._always:
            return max(hi - lo, timedelta(0))
        total = timedelta(0)
        day, last = self._local_date(lo), self._local_date(hi)
        while day <= last:
            for s_lo, s_hi in self._day_spans(day):
                overlap = min(hi, s_hi) - max(lo, s_lo)
                if overlap > timedelta(0):
                    total += overlap
            day += _ONE_DAY
        return total


@lru_cache(maxsize=128)
def calendar_for(spec: CalendarSpec) -> WorkingCalendar:
    """The WorkingCalendar of a spec, built once per spec."""
    return WorkingCalendar(spec)


# -- the deployment's calendar register ------------------------------------------------------


@dataclass(frozen=True)
class RegisterEntry:
    """A decree in the deployment's calendar register.

    `off`: days that are not working days (a holiday, cuti bersama, a regency's own day);
    `on`: days the national table lists as holidays that a decree made working days again;
    `ramadan`: the dates of Ramadan of a year, as the government fixed them.
    """

    kind: str  # "off" | "on" | "ramadan"
    first: date
    last: date
    reason: str
    opd: str | None = None  # None: the whole deployment
    cuti_bersama: bool = False  # an `off` entry that units serving on cuti bersama work through
    estimated: bool = False

    def days(self) -> Iterable[date]:
        """Every date from first to last."""
        day = self.first
        while day <= self.last:
            yield day
            day += _ONE_DAY


def effective_calendar(
    spec: CalendarSpec,
    register: Iterable[RegisterEntry],
    opd: str | None = None,
    zone: str | None = None,
) -> CalendarSpec:
    """The calendar a case of office `opd` runs on: its SOP's calendar with the register's
    national entries and that office's own, and the office's time zone where the SOP did not
    fix one. Calendars without national holidays (`24x7`, `holidays: none`) take no entries."""
    if spec.always_open or not spec.national_holidays:
        return spec
    off: set[date] = set(spec.extra_holidays)
    on: set[date] = set(spec.working_days)
    periods = list(spec.periods)
    for entry in register:
        if entry.opd is not None and entry.opd != opd:
            continue
        if entry.kind == "off" and (spec.cuti_bersama or not entry.cuti_bersama):
            off.update(entry.days())
        elif entry.kind == "on":
            on.update(entry.days())
        elif entry.kind == "ramadan" and spec.ramadan:
            periods.append(
                DatedHours(
                    entry.first,
                    entry.last,
                    RAMADAN_HOURS,
                    RAMADAN_BREAKS,
                    estimated=entry.estimated,
                    reason=entry.reason,
                )
            )
    timezone = spec.timezone
    if zone is not None and not spec.zone_fixed:
        timezone = zone
    return replace(
        spec,
        timezone=timezone,
        extra_holidays=tuple(sorted(off)),
        working_days=tuple(sorted(on - off)),
        periods=tuple(sorted(set(periods), key=lambda p: p.first)),
    )
