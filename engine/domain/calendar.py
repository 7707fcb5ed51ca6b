"""Working time: which instants count, and the deadline N working units after a start.

Pure: the caller passes every instant in; nothing here reads the wall clock. Inputs may be in
any time zone, outputs are UTC; local time exists only inside this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from engine.domain.durations import UNIT_SECONDS, Duration
from engine.domain.model import CalendarSpec

_ONE_DAY = timedelta(days=1)
_DAY_SECONDS = 86400

Span = tuple[datetime, datetime]  # a working [opening, closing) interval, both UTC


@lru_cache(maxsize=64)
def _national_holidays(year: int) -> frozenset[date]:
    """Indonesia's public holidays and cuti bersama of one year."""
    # building the holiday table is slow (lunar calendars), so each year is built once;
    # "government" is the category that carries the cuti bersama of the SKB 3 Menteri
    table = holidays.country_holidays("ID", categories=("public", "government"), years=year)
    return frozenset(table.keys())


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


class WorkingCalendar:
    """A CalendarSpec made usable: working instants, deadlines and elapsed working time."""

    def __init__(self, spec: CalendarSpec) -> None:
        if len(spec.hours) != 7:
            raise ValueError(f"calendar `{spec.name}` needs hours for 7 weekdays")
        for hours in spec.hours:
            # 00:00 as closing means the end of the day; any other closing must follow opening
            if hours is not None and hours[1] != time(0) and hours[1] <= hours[0]:
                raise ValueError(
                    f"calendar `{spec.name}`: closing {hours[1]} is not after opening {hours[0]}"
                )
        if all(h is None for h in spec.hours):
            raise ValueError(f"calendar `{spec.name}` has no working hours on any day")
        try:
            self._zone = ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"`{spec.timezone}` is not a known time zone") from exc
        self.spec = spec
        self._extra = frozenset(spec.extra_holidays)
        # every second counts: plain elapsed-time arithmetic, exact and fast
        self._always = spec.always_open

    @property
    def nominal_day_seconds(self) -> int:
        """Length in seconds of the longest working day (for ordering ladders)."""
        return nominal_day_seconds(self.spec.hours)

    def is_working_day(self, d: date) -> bool:
        """True when the day has opening hours and is no holiday."""
        if self.spec.hours[d.weekday()] is None or d in self._extra:
            return False
        return not (self.spec.national_holidays and d in _national_holidays(d.year))

    def is_working(self, instant: datetime) -> bool:
        """True when the instant lies inside [opening, closing) of a working day."""
        at = _utc(instant)
        span = self._span(self._local_date(at))
        return span is not None and span[0] <= at < span[1]

    def next_opening(self, instant: datetime) -> datetime:
        """The instant itself when it is working time, else the next opening (UTC)."""
        at = _utc(instant)
        day = self._local_date(at)
        while True:
            span = self._span(day)
            if span is not None and at < span[1]:
                return max(at, span[0])
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

    def _span(self, day: date) -> Span | None:
        """The working interval of a local date in UTC, or None when it is not a working day."""
        hours = self.spec.hours[day.weekday()]
        if hours is None or not self.is_working_day(day):
            return None
        opening, closing = hours
        close_day = day + _ONE_DAY if closing == time(0) else day
        return (
            datetime.combine(day, opening, self._zone).astimezone(UTC),
            datetime.combine(close_day, closing, self._zone).astimezone(UTC),
        )

    def _add_seconds(self, at: datetime, seconds: int) -> datetime:
        """The instant at which `seconds` (> 0) working seconds after `at` have elapsed."""
        if self._always:
            return at + timedelta(seconds=seconds)
        remaining = timedelta(seconds=seconds)
        day = self._local_date(at)
        while True:  # one turn per calendar day: whole days are subtracted at once
            span = self._span(day)
            if span is not None and at < span[1]:
                begin = max(at, span[0])
                available = span[1] - begin
                # `<=`: a count reached exactly at closing ends there, not at the next opening
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += _ONE_DAY

    def _add_days(self, at: datetime, days: int) -> datetime:
        """Same local clock time on the `days`-th (> 0) working day after the start's day."""
        if self._always:
            return at + days * _ONE_DAY
        start = self.next_opening(at).astimezone(self._zone)
        day, clock = start.date(), start.time()
        span: Span | None = None
        while days:
            day += _ONE_DAY
            span = self._span(day)
            if span is not None:
                days -= 1
        assert span is not None  # the loop stopped on a working day
        wanted = datetime.combine(day, clock, self._zone).astimezone(UTC)
        # a day that opens later or closes earlier than the clock time clamps it into its hours
        return min(max(wanted, span[0]), span[1])

    def _worked(self, lo: datetime, hi: datetime) -> timedelta:
        """Working time inside [lo, hi], as an exact timedelta."""
        if self._always:
            return max(hi - lo, timedelta(0))
        total = timedelta(0)
        day, last = self._local_date(lo), self._local_date(hi)
        while day <= last:
            span = self._span(day)
            if span is not None:
                overlap = min(hi, span[1]) - max(lo, span[0])
                if overlap > timedelta(0):
                    total += overlap
            day += _ONE_DAY
        return total


@lru_cache(maxsize=128)
def calendar_for(spec: CalendarSpec) -> WorkingCalendar:
    """The WorkingCalendar of a spec, built once per spec."""
    return WorkingCalendar(spec)
