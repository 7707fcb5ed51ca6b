"""Working time as the law counts it: breaks, Ramadan hours, ID-national, days in law.

Every instant is fixed and worked out by hand (Perpres 21/2023: 37.5 hours a week without
breaks; in Ramadan 32.5 hours from 08:00). Nothing reads the wall clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.calendar import (
    WorkingCalendar,
    calendar_for,
    decree_issued,
    ramadan_estimates,
    week_seconds,
)
from engine.domain.durations import Duration
from engine.domain.errors import DefinitionError
from engine.domain.model import (
    ID_WORKING,
    RAMADAN_BREAKS,
    RAMADAN_HOURS,
    DatedHours,
)
from engine.domain.sla import service_deadline, step_deadline
from engine.domain.validator import load_sop

WIB = ZoneInfo("Asia/Jakarta")
id_working = calendar_for(ID_WORKING)

# SKB 3 Menteri: national holidays and cuti bersama on working weekdays
SKB_2026 = [
    date(2026, 1, 1), date(2026, 1, 16), date(2026, 2, 16), date(2026, 2, 17),
    date(2026, 3, 18), date(2026, 3, 19), date(2026, 3, 20), date(2026, 3, 23),
    date(2026, 3, 24), date(2026, 4, 3), date(2026, 5, 1), date(2026, 5, 14),
    date(2026, 5, 15), date(2026, 5, 27), date(2026, 5, 28), date(2026, 6, 1),
    date(2026, 6, 16), date(2026, 8, 17), date(2026, 8, 25), date(2026, 12, 24),
    date(2026, 12, 25),
]  # fmt: skip
SKB_2027_CUTI_BERSAMA = [
    date(2027, 2, 5), date(2027, 3, 9), date(2027, 3, 12), date(2027, 3, 15),
    date(2027, 3, 25), date(2027, 5, 18), date(2027, 5, 19), date(2027, 12, 24),
]  # fmt: skip


def wib(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=WIB)


def week_worked(cal: WorkingCalendar, monday: datetime) -> float:
    return cal.working_seconds(monday, monday + timedelta(days=7)) / 3600


def sop_with(calendar: str, service_time: str = "2h", sla: str = "2h") -> str:
    return f"""
sop: uji-waktu
version: 1
opd: dinas-uji
title: Uji waktu kerja
service_time: {service_time}
calendar: {calendar}
roles: {{loket: Petugas Loket}}
steps:
  - {{id: daftar, name: Pendaftaran, role: loket, sla: {sla}}}
  - {{id: selesai, name: Selesai, final: true, outcome: completed}}
transitions:
  - {{name: tutup, from: daftar, to: selesai}}
"""


# -- breaks and weekly hours ---------------------------------------------------------------


def test_id_working_counts_37_5_hours_in_an_ordinary_week() -> None:
    assert week_worked(id_working, wib(2026, 7, 6)) == 37.5  # no holiday, no Ramadan
    assert week_seconds(ID_WORKING.hours, ID_WORKING.breaks) == 37.5 * 3600


def test_id_working_counts_32_5_hours_in_a_ramadan_week() -> None:
    assert week_worked(id_working, wib(2026, 3, 2)) == 32.5  # Ramadan 1447, no holiday
    assert week_seconds(RAMADAN_HOURS, RAMADAN_BREAKS) == 32.5 * 3600


def test_breaks_are_not_working_time() -> None:
    assert id_working.is_working(wib(2026, 7, 6, 11, 59))
    assert not id_working.is_working(wib(2026, 7, 6, 12, 0))
    assert not id_working.is_working(wib(2026, 7, 6, 12, 59))
    assert id_working.is_working(wib(2026, 7, 6, 13, 0))
    # Friday's break is 90 minutes, from 11:30
    assert not id_working.is_working(wib(2026, 7, 10, 11, 30))
    assert id_working.next_opening(wib(2026, 7, 10, 11, 45)) == wib(2026, 7, 10, 13)


def test_hours_run_over_the_break() -> None:
    # 11:00 + 2 working hours: one before noon, one after the break
    assert id_working.add(wib(2026, 7, 6, 11), Duration.parse("2h")) == wib(2026, 7, 6, 14)
    # Friday: 10:30 + 2 h = 11:30 (one hour) + 13:00-14:00
    assert id_working.add(wib(2026, 7, 10, 10, 30), Duration.parse("2h")) == wib(2026, 7, 10, 14)


def test_ramadan_hours_open_at_eight_with_a_half_hour_break() -> None:
    assert not id_working.is_working(wib(2026, 3, 2, 7, 45))
    assert id_working.next_opening(wib(2026, 3, 2, 7)) == wib(2026, 3, 2, 8)
    assert not id_working.is_working(wib(2026, 3, 2, 12, 15))
    assert id_working.is_working(wib(2026, 3, 2, 12, 30))
    assert not id_working.is_working(wib(2026, 3, 2, 15))


def test_kartu_keluarga_two_hours_from_monday_1430_in_ramadan_is_tuesday_0930() -> None:
    received = wib(2026, 2, 23, 14, 30)
    # 14:30-15:00 on Monday, then 08:00-09:30 on Tuesday
    assert id_working.add(received, Duration.parse("2h")) == wib(2026, 2, 24, 9, 30)
    sop = load_sop(sop_with("id-working"))
    assert step_deadline(sop, sop.step("daftar"), received) == wib(2026, 2, 24, 9, 30)
    assert service_deadline(sop, received) == wib(2026, 2, 24, 9, 30)


def test_ramadan_is_estimated_where_no_register_fixes_it() -> None:
    (ramadan,) = ramadan_estimates(2026)
    assert ramadan.estimated
    # Umm al-Qura 1 Ramadan 1447; its last day is the eve of Idul Fitri in the SKB
    assert (ramadan.first, ramadan.last) == (date(2026, 2, 18), date(2026, 3, 20))


def test_a_registered_ramadan_replaces_the_estimate() -> None:
    fixed = DatedHours(date(2026, 2, 19), date(2026, 3, 20), RAMADAN_HOURS, RAMADAN_BREAKS)
    cal = WorkingCalendar(replace(ID_WORKING, periods=(fixed,)))
    # the government's 1 Ramadan was Thursday 19 February: Wednesday 18 keeps ordinary hours
    assert cal.is_working(wib(2026, 2, 18, 7, 30))
    assert not cal.is_working(wib(2026, 2, 19, 7, 30))
    assert not id_working.is_working(wib(2026, 2, 18, 7, 30))  # the estimate: 18 February


def test_an_inline_calendar_that_sets_hours_has_no_breaks_or_ramadan_hours() -> None:
    sop = load_sop(sop_with('{hours: {mon-fri: "08:00-16:00"}}'))
    cal = calendar_for(sop.calendar)
    assert week_worked(cal, wib(2026, 7, 6)) == 40
    assert week_worked(cal, wib(2026, 3, 2)) == 40


def test_an_inline_calendar_without_hours_takes_id_working_hours_and_breaks() -> None:
    sop = load_sop(sop_with("{timezone: Asia/Makassar}"))
    cal = calendar_for(sop.calendar)
    assert week_worked(cal, datetime(2026, 7, 6, tzinfo=ZoneInfo("Asia/Makassar"))) == 37.5
    assert week_worked(cal, datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Makassar"))) == 32.5


def test_inline_breaks_are_read_per_day() -> None:
    sop = load_sop(
        sop_with('{hours: {mon-fri: "08:00-16:00"}, breaks: {mon-thu: "12:00-13:00"}}')
    )
    assert week_worked(calendar_for(sop.calendar), wib(2026, 7, 6)) == 36


@pytest.mark.parametrize(
    ("calendar", "words"),
    [
        ('{hours: {mon-fri: "08:00-16:00"}, breaks: {mon: "17:00-18:00"}}', "inside"),
        ('{hours: {mon-fri: "08:00-16:00"}, breaks: {sat: "12:00-13:00"}}', "no working hours"),
        ('{hours: {mon-fri: "08:00-16:00"}, breaks: {mon: "noon"}}', "opening and closing"),
        ('{hours: {mon-fri: "08:00-16:00"}, breaks: {mnday: "12:00-13:00"}}', "not a day"),
        ("{holidays: ID-nasional}", "ID-national"),
    ],
)
def test_bad_breaks_and_holiday_sets_are_refused_at_their_line(calendar: str, words: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_sop(sop_with(calendar))
    problems = caught.value.problems
    assert any(words in p.message and p.line == 7 for p in problems), problems


# -- holidays --------------------------------------------------------------------------------


@pytest.mark.parametrize("day", SKB_2026 + SKB_2027_CUTI_BERSAMA, ids=str)
def test_skb_2026_and_2027_days_are_not_working_days(day: date) -> None:
    assert not id_working.is_working_day(day)


def test_installed_holiday_data_carries_the_2026_decree() -> None:
    assert decree_issued(2026)
    assert not decree_issued(2031)  # no decree yet: only estimated dates


def test_id_national_works_on_cuti_bersama_but_not_on_holidays() -> None:
    sop = load_sop(sop_with("{holidays: ID-national}"))
    cal = calendar_for(sop.calendar)
    assert cal.is_working_day(date(2026, 2, 16))  # cuti bersama Imlek
    assert cal.is_working_day(date(2026, 12, 24))  # cuti bersama Natal
    assert not cal.is_working_day(date(2026, 2, 17))  # Imlek
    assert not cal.is_working_day(date(2026, 12, 25))


def test_rujukan_rsud_serves_on_cuti_bersama() -> None:
    from pathlib import Path

    source = Path(__file__).parent.parent / "workflows" / "rujukan-rsud.yaml"
    sop = load_sop(source.read_bytes())
    assert not sop.calendar.cuti_bersama and sop.calendar.national_holidays
    assert calendar_for(sop.calendar).is_working_day(date(2026, 5, 15))


def test_a_decree_can_make_a_listed_holiday_a_working_day() -> None:
    cal = WorkingCalendar(replace(ID_WORKING, working_days=(date(2026, 12, 24),)))
    assert cal.is_working_day(date(2026, 12, 24))
    assert not cal.is_working_day(date(2026, 12, 25))


# -- a service time in days ends at the close of the Nth working day after receipt ----------


def test_whole_days_of_service_time_end_at_the_close_of_the_nth_day_after_receipt() -> None:
    sop = load_sop(sop_with("id-working", service_time="3d", sla="3d"))
    received = wib(2026, 7, 6, 10)  # Monday
    # the day of receipt does not count: Tue, Wed, Thu; Thursday closes at 16:00
    assert service_deadline(sop, received) == wib(2026, 7, 9, 16)
    # a step's sla keeps the same clock time on the third working day
    assert step_deadline(sop, sop.step("daftar"), received) == wib(2026, 7, 9, 10)
    # received after closing, or on a Saturday: still counted from the next day
    assert service_deadline(sop, wib(2026, 7, 6, 18)) == wib(2026, 7, 9, 16)
    assert service_deadline(sop, wib(2026, 7, 11, 9)) == wib(2026, 7, 15, 16)
    # over Nyepi and Idul Fitri 2026: received Friday 13 March, Mon 16, Tue 17, Wed 25; in
    # ordinary hours again, Wednesday 25 closes at 16:00
    assert service_deadline(sop, wib(2026, 3, 13, 10)) == wib(2026, 3, 25, 16)


def test_a_service_time_with_hours_is_added_like_an_sla() -> None:
    sop = load_sop(sop_with("id-working", service_time="1d 2h"))
    # one working day to Tuesday 10:00, then 10:00-12:00: the break starts at the deadline
    assert service_deadline(sop, wib(2026, 7, 6, 10)) == wib(2026, 7, 7, 12)


# -- add then measure, across breaks and periods ---------------------------------------------

FIXED_RAMADAN = replace(
    ID_WORKING,
    periods=(DatedHours(date(2026, 2, 19), date(2026, 3, 20), RAMADAN_HOURS, RAMADAN_BREAKS),),
    working_days=(date(2026, 12, 24),),
    breaks=(*ID_WORKING.breaks[:5], (time(10), time(10, 30)), None),
    hours=(*ID_WORKING.hours[:5], (time(8), time(12)), None),
)
calendars = st.sampled_from([ID_WORKING, FIXED_RAMADAN]).map(calendar_for)
starts = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 20), timezones=st.just(WIB)
)
durations = st.builds(
    lambda n, unit: Duration(((n, unit),)), st.integers(1, 200_000), st.sampled_from("smh")
).filter(lambda d: d.seconds <= 400 * 3600)


@settings(max_examples=300, deadline=None)
@given(calendars, starts, durations)
def test_measuring_what_was_added_gives_it_back(
    cal: WorkingCalendar, start: datetime, duration: Duration
) -> None:
    end = cal.add(start, duration)
    assert cal.working_seconds(start, end) == duration.seconds
    # inside working time, or exactly at the end of a span (a closing or a break)
    assert cal.is_working(end) or cal.is_working(end - timedelta(microseconds=1))


@settings(max_examples=200, deadline=None)
@given(calendars, starts, st.integers(1, 30))
def test_days_in_law_end_at_a_closing(cal: WorkingCalendar, start: datetime, days: int) -> None:
    end = cal.add_by_law(start, Duration(((days, "d"),)))
    assert not cal.is_working(end) and cal.is_working(end - timedelta(seconds=1))
    # received in working time, never earlier than the same-clock-time rule (received on a
    # day off, the law counts from that day, not from the next opening)
    received = cal.next_opening(start)
    assert cal.add_by_law(received, Duration(((days, "d"),))) >= cal.add(
        received, Duration(((days, "d"),))
    )


# -- the register and the office's zone ------------------------------------------------------


def test_the_register_closes_days_for_the_nation_or_one_office() -> None:
    from engine.domain.calendar import RegisterEntry, effective_calendar

    entries = (
        RegisterEntry("off", date(2026, 7, 7), date(2026, 7, 7), "SKB amandemen"),
        RegisterEntry("off", date(2026, 7, 8), date(2026, 7, 8), "Hari Jadi", opd="dukcapil"),
        RegisterEntry("on", date(2026, 12, 24), date(2026, 12, 24), "SKB amandemen"),
        RegisterEntry("off", date(2026, 7, 9), date(2026, 7, 9), "cuti", cuti_bersama=True),
    )
    ours = calendar_for(effective_calendar(ID_WORKING, entries, "dukcapil"))
    theirs = calendar_for(effective_calendar(ID_WORKING, entries, "dinkes"))
    assert not ours.is_working_day(date(2026, 7, 7)) and not theirs.is_working_day(date(2026, 7, 7))
    assert not ours.is_working_day(date(2026, 7, 8)) and theirs.is_working_day(date(2026, 7, 8))
    assert ours.is_working_day(date(2026, 12, 24))
    hospital = load_sop(sop_with("{holidays: ID-national}")).calendar
    assert calendar_for(effective_calendar(hospital, entries, "rsud")).is_working_day(
        date(2026, 7, 9)
    )
    # 24x7 and `holidays: none` take nothing from the register
    from engine.domain.model import ALWAYS

    assert effective_calendar(ALWAYS, entries, "dukcapil") is ALWAYS


def test_id_working_runs_in_the_office_zone_unless_the_sop_fixes_one() -> None:
    from engine.domain.calendar import effective_calendar

    wita = ZoneInfo("Asia/Makassar")
    makassar = calendar_for(effective_calendar(ID_WORKING, (), "dpmptsp", "Asia/Makassar"))
    start = datetime(2026, 7, 6, 11, tzinfo=wita)  # one hour, the break, one hour
    assert makassar.add(start, Duration.parse("2h")) == datetime(2026, 7, 6, 14, tzinfo=wita)
    # 07:00 in Jakarta is 08:00 in Makassar: open there, not yet in Jakarta
    assert makassar.is_working(wib(2026, 7, 6, 7))
    assert not id_working.is_working(wib(2026, 7, 6, 7))
    fixed = load_sop(sop_with("{timezone: Asia/Jakarta}")).calendar
    assert effective_calendar(fixed, (), "dpmptsp", "Asia/Makassar").timezone == "Asia/Jakarta"
