"""Working time: working days, deadlines from durations, and elapsed working seconds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.calendar import WorkingCalendar, calendar_for
from engine.domain.durations import Duration
from engine.domain.model import ALWAYS, ID_WORKING, CalendarSpec

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")

CUTI_BERSAMA_2026 = [
    date(2026, 2, 16),
    date(2026, 3, 18),
    date(2026, 3, 20),
    date(2026, 3, 23),
    date(2026, 3, 24),
    date(2026, 5, 15),
    date(2026, 5, 28),
    date(2026, 12, 24),
]

# Makassar office with a Saturday half day and a local holiday
MAKASSAR = CalendarSpec(
    None,
    "Asia/Makassar",
    (*((time(8), time(15)),) * 5, (time(8), time(12)), None),
    True,
    (date(2026, 9, 10),),
)
# a night desk whose weekday spans close at midnight and run straight into a 24-hour Saturday
NIGHT = CalendarSpec(
    None,
    "Asia/Jayapura",
    (*((time(20), time(0)),) * 5, (time(0), time(0)), None),
    True,
)

id_working = calendar_for(ID_WORKING)
always = calendar_for(ALWAYS)
# The mechanics tests below (opening, closing, day counts, zones) were written on dates in
# March 2026, which fall in Ramadan 1447, against id-working's hours from before it had
# breaks and Ramadan hours. They keep testing those mechanics on the same plain hours, with
# the same expectations; id-working itself (breaks, Ramadan, 37.5 and 32.5 hours a week) is
# tested in tests/test_working_time.py.
PLAIN = replace(ID_WORKING, name=None, breaks=(), ramadan=False)
plain = calendar_for(PLAIN)


def wib(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A fixed instant in Jakarta local time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=WIB)


def d(text: str) -> Duration:
    """Shorthand for Duration.parse."""
    return Duration.parse(text)


# -- working days ------------------------------------------------------------------------


def test_installed_holiday_data_carries_the_2026_skb() -> None:
    public = holidays.country_holidays("ID", categories=("public",), years=2026)
    joint = holidays.country_holidays("ID", categories=("government",), years=2026)
    assert len(public) == 17
    assert sorted(joint) == CUTI_BERSAMA_2026


@pytest.mark.parametrize("day", CUTI_BERSAMA_2026, ids=str)
def test_cuti_bersama_is_not_a_working_day(day: date) -> None:
    assert not id_working.is_working_day(day)


def test_days_around_nyepi_and_idul_fitri_are_working_days() -> None:
    assert id_working.is_working_day(date(2026, 3, 17))
    assert id_working.is_working_day(date(2026, 3, 25))
    assert not id_working.is_working_day(date(2026, 3, 19))  # Nyepi itself


def test_2026_has_240_working_days_in_id_working() -> None:
    days = (date(2026, 1, 1) + timedelta(n) for n in range(365))
    # 261 weekdays minus the 21 of the 25 holidays and cuti bersama that fall on a weekday
    assert sum(id_working.is_working_day(day) for day in days) == 240


def test_weekends_are_not_working_days() -> None:
    assert not id_working.is_working_day(date(2026, 3, 7))
    assert not id_working.is_working_day(date(2026, 3, 8))


def test_extra_holidays_are_not_working_days() -> None:
    cal = WorkingCalendar(replace(ID_WORKING, extra_holidays=(date(2026, 9, 10),)))
    assert id_working.is_working_day(date(2026, 9, 10))
    assert not cal.is_working_day(date(2026, 9, 10))
    assert cal.add(wib(2026, 9, 9, 10), d("1d")) == wib(2026, 9, 11, 10)


def test_holidays_none_works_through_nyepi_and_idul_fitri() -> None:
    cal = WorkingCalendar(replace(ID_WORKING, national_holidays=False))
    assert cal.is_working_day(date(2026, 3, 18))
    assert cal.add(wib(2026, 3, 13, 10), d("3d")) == wib(2026, 3, 18, 10)


# -- working instants --------------------------------------------------------------------


def test_opening_is_inside_and_closing_is_outside_working_time() -> None:
    assert plain.is_working(wib(2026, 3, 9, 7, 30))
    assert not plain.is_working(wib(2026, 3, 9, 7, 29, 59))
    assert not plain.is_working(wib(2026, 3, 9, 16))
    assert plain.is_working(wib(2026, 3, 13, 16, 15))  # Friday closes at 16:30


def test_instants_in_other_zones_are_judged_in_local_time() -> None:
    # 00:30 UTC is 07:30 in Jakarta
    assert plain.is_working(datetime(2026, 3, 9, 0, 30, tzinfo=UTC))
    assert not plain.is_working(datetime(2026, 3, 9, 0, 29, tzinfo=UTC))


@pytest.mark.parametrize(
    ("start", "opening"),
    [
        (wib(2026, 3, 7, 11), wib(2026, 3, 9, 7, 30)),  # Saturday
        (wib(2026, 3, 10, 6), wib(2026, 3, 10, 7, 30)),  # before opening
        (wib(2026, 3, 10, 17), wib(2026, 3, 11, 7, 30)),  # after closing
        (wib(2026, 3, 10, 16), wib(2026, 3, 11, 7, 30)),  # exactly at closing
        (wib(2026, 3, 17, 17), wib(2026, 3, 25, 7, 30)),  # Nyepi to Idul Fitri
        (wib(2026, 3, 10, 9), wib(2026, 3, 10, 9)),  # already open
    ],
    ids=["saturday", "0600", "1700", "closing", "lebaran", "open"],
)
def test_next_opening_is_the_instant_itself_or_the_next_opening(
    start: datetime, opening: datetime
) -> None:
    result = plain.next_opening(start)
    assert result == opening
    assert result.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 9, 9)
    with pytest.raises(ValueError, match="time zone"):
        id_working.is_working(naive)
    with pytest.raises(ValueError, match="time zone"):
        id_working.add(naive, d("1h"))
    with pytest.raises(ValueError, match="time zone"):
        id_working.working_seconds(wib(2026, 3, 9, 9), naive)


# -- deadlines ---------------------------------------------------------------------------


def test_spec_worked_example_three_working_days_over_lebaran() -> None:
    deadline = id_working.add(wib(2026, 3, 13, 10), d("3d"))
    assert deadline == wib(2026, 3, 25, 10)
    assert deadline.tzinfo is UTC


def test_deadline_is_returned_in_utc() -> None:
    assert id_working.add(wib(2026, 3, 9, 9), d("1h")) == datetime(2026, 3, 9, 3, tzinfo=UTC)


def test_start_outside_hours_counts_from_the_next_opening() -> None:
    assert plain.add(wib(2026, 3, 7, 11), d("1h")) == wib(2026, 3, 9, 8, 30)
    assert plain.add(wib(2026, 3, 10, 6), d("1h")) == wib(2026, 3, 10, 8, 30)
    assert plain.add(wib(2026, 3, 10, 17), d("1h")) == wib(2026, 3, 11, 8, 30)
    # a day count from a Saturday starts at Monday's opening
    assert plain.add(wib(2026, 3, 7, 11), d("1d")) == wib(2026, 3, 10, 7, 30)


def test_fridays_longer_hours_count_before_the_weekend() -> None:
    # 15 minutes before Friday's 16:30 closing, then 15 minutes from Monday's opening
    assert plain.add(wib(2026, 3, 6, 16, 15), d("30m")) == wib(2026, 3, 9, 7, 45)


def test_count_reached_at_closing_ends_at_closing_not_next_opening() -> None:
    assert plain.add(wib(2026, 3, 9, 15), d("1h")) == wib(2026, 3, 9, 16)


def test_day_count_lands_on_closing_when_that_day_closes_earlier() -> None:
    # Friday 16:20 is after Monday's 16:00 closing
    assert plain.add(wib(2026, 3, 6, 16, 20), d("1d")) == wib(2026, 3, 9, 16)


def test_day_count_lands_on_opening_when_that_day_opens_later() -> None:
    cal = WorkingCalendar(
        replace(ID_WORKING, hours=((time(7), time(16)), *((time(8), time(16)),) * 4, None, None))
    )
    assert cal.add(wib(2026, 3, 9, 7, 15), d("1d")) == wib(2026, 3, 10, 8)


def test_parts_apply_left_to_right() -> None:
    thursday = wib(2026, 3, 5, 14)
    # one day to Friday 14:00, then 2.5h to Friday's closing and 1.5h on Monday
    assert plain.add(thursday, d("1d 4h")) == wib(2026, 3, 9, 9)
    # four hours to Friday 09:30, then one day to Monday 09:30
    assert plain.add(thursday, d("4h 1d")) == wib(2026, 3, 9, 9, 30)


def test_adding_zero_gives_the_next_opening() -> None:
    assert plain.add(wib(2026, 3, 7, 11), d("0m")) == wib(2026, 3, 9, 7, 30)
    assert plain.add(wib(2026, 3, 9, 9), d("0d")) == wib(2026, 3, 9, 9)
    assert plain.add(wib(2026, 3, 7, 11), Duration(())) == wib(2026, 3, 9, 7, 30)


def test_a_million_working_seconds_is_fast_and_exact() -> None:
    start = wib(2026, 3, 13, 10)
    deadline = id_working.add(start, Duration.of_seconds(1_000_000))
    assert id_working.working_seconds(start, deadline) == 1_000_000


@pytest.mark.parametrize(
    ("zone", "utc_hour"), [(WIB, 3), (WITA, 2), (WIT, 1)], ids=["WIB", "WITA", "WIT"]
)
def test_same_local_rule_in_all_three_zones(zone: ZoneInfo, utc_hour: int) -> None:
    cal = WorkingCalendar(replace(ID_WORKING, name=None, timezone=zone.key))
    start = datetime(2026, 3, 13, 10, tzinfo=zone)
    deadline = cal.add(start, d("3d"))
    assert deadline == datetime(2026, 3, 25, 10, tzinfo=zone)
    assert deadline == datetime(2026, 3, 25, utc_hour, tzinfo=UTC)


def test_24x7_counts_every_second_and_days_are_24_hours() -> None:
    start = wib(2026, 3, 18, 23, 59)
    assert always.is_working(start)
    assert always.add(start, d("3d")) == start + timedelta(hours=72)
    assert always.add(start, d("1d 90s")) == start + timedelta(days=1, seconds=90)
    assert always.working_seconds(start, start + timedelta(days=2)) == 172_800
    assert always.nominal_day_seconds == 86_400


def test_midnight_closing_ends_the_day() -> None:
    night = WorkingCalendar(NIGHT)
    monday = datetime(2026, 3, 9, 20, tzinfo=WIT)
    assert night.is_working(datetime(2026, 3, 9, 23, 59, tzinfo=WIT))
    assert not night.is_working(datetime(2026, 3, 10, 0, tzinfo=WIT))
    assert night.add(monday, d("4h")) == datetime(2026, 3, 10, 0, tzinfo=WIT)
    assert night.add(monday, d("5h")) == datetime(2026, 3, 10, 21, tzinfo=WIT)
    assert night.nominal_day_seconds == 86_400


# -- elapsed working time ----------------------------------------------------------------


def test_working_seconds_over_a_weekend_counts_only_office_hours() -> None:
    # Friday's last 30 minutes and Monday's first 30
    assert plain.working_seconds(wib(2026, 3, 6, 16), wib(2026, 3, 9, 8)) == 3600


def test_working_seconds_is_zero_when_end_is_not_after_start() -> None:
    assert id_working.working_seconds(wib(2026, 3, 9, 10), wib(2026, 3, 9, 9)) == 0
    assert id_working.working_seconds(wib(2026, 3, 9, 10), wib(2026, 3, 9, 10)) == 0


def test_overlapping_pauses_beyond_the_range_count_once() -> None:
    paused = [
        (wib(2026, 3, 9, 7), wib(2026, 3, 9, 9)),
        (wib(2026, 3, 9, 8, 30), wib(2026, 3, 9, 10)),
        (wib(2026, 3, 9, 11), wib(2026, 3, 9, 13)),
    ]
    # 08:00-12:00 is 4h; 08:00-10:00 and 11:00-12:00 are paused
    assert id_working.working_seconds(wib(2026, 3, 9, 8), wib(2026, 3, 9, 12), paused) == 3600


def test_nominal_day_is_the_longest_working_day() -> None:
    assert id_working.nominal_day_seconds == 9 * 3600  # Friday 07:30-16:30


def test_calendar_for_builds_each_spec_once() -> None:
    assert calendar_for(ID_WORKING) is calendar_for(ID_WORKING)
    assert calendar_for(ID_WORKING) is not calendar_for(ALWAYS)


@pytest.mark.parametrize(
    "spec",
    [
        replace(ID_WORKING, hours=(None,) * 7),
        replace(ID_WORKING, hours=((time(16), time(8)),) * 7),
        replace(ID_WORKING, timezone="Asia/Atlantis"),
    ],
    ids=["no-hours", "closing-before-opening", "unknown-zone"],
)
def test_unusable_calendars_are_refused(spec: CalendarSpec) -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(spec)


# -- properties --------------------------------------------------------------------------

calendars = st.sampled_from([ID_WORKING, ALWAYS, MAKASSAR, NIGHT]).map(calendar_for)
instants = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([UTC, WIB, WITA, WIT]),
)
clock_parts = st.tuples(st.integers(0, 200), st.sampled_from("smh"))
any_parts = st.tuples(st.integers(0, 20), st.sampled_from("smhd"))
clock_durations = st.lists(clock_parts, min_size=1, max_size=3).map(lambda p: Duration(tuple(p)))
durations = st.lists(any_parts, min_size=1, max_size=3).map(lambda p: Duration(tuple(p)))
offsets = st.integers(0, 30 * 86400).map(lambda s: timedelta(seconds=s))
fast = settings(max_examples=60, deadline=None)


def in_working_time_or_at_closing(cal: WorkingCalendar, instant: datetime) -> bool:
    """Working, or exactly a closing instant (the microsecond before it is working)."""
    return cal.is_working(instant) or cal.is_working(instant - timedelta(microseconds=1))


@fast
@given(calendars, instants, clock_durations)
def test_working_seconds_inverts_add(
    cal: WorkingCalendar, start: datetime, duration: Duration
) -> None:
    assert cal.working_seconds(start, cal.add(start, duration)) == duration.seconds


@fast
@given(calendars, instants, durations)
def test_deadline_never_lands_outside_working_time(
    cal: WorkingCalendar, start: datetime, duration: Duration
) -> None:
    deadline = cal.add(start, duration)
    assert deadline >= start
    assert in_working_time_or_at_closing(cal, deadline)


@fast
@given(calendars, instants, offsets, offsets)
def test_working_seconds_adds_up_over_a_split_point(
    cal: WorkingCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    split, end = start + first, start + first + second
    whole = cal.working_seconds(start, end)
    parts = cal.working_seconds(start, split) + cal.working_seconds(split, end)
    assert whole == pytest.approx(parts, abs=1e-6)


@fast
@given(calendars, instants, st.lists(offsets, min_size=3, max_size=3))
def test_paused_time_does_not_count(
    cal: WorkingCalendar, start: datetime, cuts: list[timedelta]
) -> None:
    pause_start, pause_end, end = (start + cut for cut in sorted(cuts))
    plain = cal.working_seconds(start, end)
    inside_pause = cal.working_seconds(pause_start, pause_end)
    paused = cal.working_seconds(start, end, [(pause_start, pause_end)])
    assert paused == pytest.approx(plain - inside_pause, abs=1e-6)
