"""SLA clocks in working time: rung instants, paused time, the service deadline (pure).

Every instant here is fixed and worked out by hand from the calendar, never computed by
the code under test. `id-working` opens Monday to Thursday 07:30-16:00 and Friday
07:30-16:30 in Jakarta (UTC+7), closed at weekends and on national holidays; in March
2026 Nyepi, Idul Fitri and their cuti bersama close Wednesday 18 to Tuesday 24.
A 24x7 calendar would hide a clock counted in wall seconds: these cross evenings,
weekends and holidays, where working time and wall time part.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.domain.model import ALWAYS, SOP, Step
from engine.domain.sla import (
    paused_working_seconds,
    resumed_deadline,
    rung_deadlines,
    service_deadline,
    step_deadline,
)
from engine.domain.validator import load_sop

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")

SOURCE = """
sop: uji-sla
version: 1
opd: dinas-uji
title: Uji SLA
service_time: 1d
calendar: {calendar}
roles: {{loket: Petugas Loket, kasi: Kepala Seksi, kadis: Kepala Dinas}}
steps:
  - {{id: daftar, name: Pendaftaran, role: loket, sla: 2h}}
  - {{id: tunggu, name: Menunggu pemohon, clock: paused}}
  - {{id: cepat, name: Tanpa tangga, role: loket, sla: 1h, escalation: []}}
  - {{id: bebas, name: Tanpa batas, role: loket}}
  - {{id: selesai, name: Selesai, final: true, outcome: completed}}
transitions:
  - {{name: tunda, from: daftar, to: tunggu, comment_required: true}}
  - {{name: lengkapi, from: tunggu, to: cepat, role: loket}}
  - {{name: lanjut, from: cepat, to: bebas}}
  - {{name: tutup, from: bebas, to: selesai}}
escalation:
{ladder}
"""

# an office in Makassar (UTC+8): short Fridays, no national holidays, one local holiday
LADDER = """
  - {at: 30m, action: warn}
  - {at: 75%, action: warn}
  - {at: 100%, action: escalate, to: kasi}
  - {at: 150%, action: escalate, to: kasi}
  - {at: 200%, action: escalate, to: kadis, flag: inspectorate}
  - {at: 5h, action: escalate, to: kadis}
"""

INLINE = (
    '{timezone: Asia/Makassar, hours: {mon-thu: "08:00-15:00", fri: "08:00-11:30"}, '
    "holidays: none, extra_holidays: [2026-09-10]}"
)


def source(calendar: str = "id-working", ladder: str = LADDER) -> str:
    return SOURCE.format(calendar=calendar, ladder=ladder.strip("\n"))


# id-working's hours before breaks and Ramadan hours, which every instant below was worked
# out on (March 2026 lies in Ramadan 1447): an inline calendar that sets `hours` has no
# breaks and keeps its hours in Ramadan. id-working's breaks and Ramadan hours are tested in
# tests/test_working_time.py.
PLAIN = '{hours: {mon-thu: "07:30-16:00", fri: "07:30-16:30"}, holidays: ID}'
ID_SOP = load_sop(source(PLAIN))
INLINE_SOP = load_sop(source(INLINE))
WITHOUT_SERVICE_TIME = load_sop(source(PLAIN).replace("service_time: 1d\n", ""))

LABELS = ["30m", "75%", "100%", "150%", "200%", "5h"]


def wib(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WIB)


def wita(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WITA)


def step(sop: SOP, step_id: str) -> Step:
    return sop.step(step_id)


@pytest.mark.parametrize(
    ("sop", "entered", "due"),
    [
        # an evening: Thursday 15:00, one working hour left that day, the rest on Friday
        (
            ID_SOP,
            wib(3, 5, 15),
            [wib(3, 5, 15, 30), wib(3, 6, 8), wib(3, 6, 8, 30), wib(3, 6, 9, 30),
             wib(3, 6, 10, 30), wib(3, 6, 11, 30)],
        ),
        # a weekend: Friday 15:30, one working hour left, then Monday
        (
            ID_SOP,
            wib(3, 6, 15, 30),
            [wib(3, 6, 16), wib(3, 9, 8), wib(3, 9, 8, 30), wib(3, 9, 9, 30),
             wib(3, 9, 10, 30), wib(3, 9, 11, 30)],
        ),
        # a holiday: Tuesday 17 March 15:00, then Nyepi, Idul Fitri and cuti bersama
        (
            ID_SOP,
            wib(3, 17, 15),
            [wib(3, 17, 15, 30), wib(3, 25, 8), wib(3, 25, 8, 30), wib(3, 25, 9, 30),
             wib(3, 25, 10, 30), wib(3, 25, 11, 30)],
        ),
        # the inline calendar: Wednesday 14:00 in Makassar, Thursday the local holiday,
        # Friday's 3.5 h, then Monday
        (
            INLINE_SOP,
            wita(9, 9, 14),
            [wita(9, 9, 14, 30), wita(9, 11, 8, 30), wita(9, 11, 9), wita(9, 11, 10),
             wita(9, 11, 11), wita(9, 14, 8, 30)],
        ),
    ],
    ids=["evening", "weekend", "holiday", "inline-calendar"],
)  # fmt: skip
def test_rungs_fall_due_in_working_time(sop: SOP, entered: datetime, due: list[datetime]) -> None:
    rungs = rung_deadlines(sop, step(sop, "daftar"), entered)
    assert [r.rung.label for r in rungs] == LABELS
    assert [r.index for r in rungs] == list(range(len(LABELS)))
    assert [r.due for r in rungs] == due
    # the 100% rung is the step's deadline itself
    assert step_deadline(sop, step(sop, "daftar"), entered) == due[2]


def test_rung_instants_are_utc_and_follow_the_entry_instant_whatever_its_zone() -> None:
    entered = datetime(2026, 3, 5, 8, tzinfo=UTC)  # Thursday 15:00 in Jakarta
    rungs = rung_deadlines(ID_SOP, step(ID_SOP, "daftar"), entered)
    assert rungs[1].due == datetime(2026, 3, 6, 1, tzinfo=UTC)  # Friday 08:00 in Jakarta


def test_a_share_of_the_allowed_time_rounds_to_the_second() -> None:
    ladder = "  - {at: 33%, action: warn}\n  - {at: 100%, action: escalate, to: kasi}"
    sop = load_sop(source(ladder=ladder).replace("sla: 2h}", "sla: 7s}"))
    # 33 % of 7 s is 2.31 s: due 2 s after entering; 100 % is the deadline, 7 s
    rungs = rung_deadlines(sop, step(sop, "daftar"), wib(3, 5, 10))
    assert [r.due for r in rungs] == [wib(3, 5, 10) + timedelta(seconds=s) for s in (2, 7)]


@pytest.mark.parametrize("step_id", ["tunggu", "bebas", "selesai"])
def test_no_deadline_and_no_rung_without_a_running_sla(step_id: str) -> None:
    # a paused clock, no sla, a final step
    assert step_deadline(ID_SOP, step(ID_SOP, step_id), wib(3, 5, 10)) is None
    assert rung_deadlines(ID_SOP, step(ID_SOP, step_id), wib(3, 5, 10)) == []


def test_a_step_that_opts_out_of_the_ladder_keeps_its_deadline_and_no_rung() -> None:
    assert step_deadline(ID_SOP, step(ID_SOP, "cepat"), wib(3, 5, 15, 30)) == wib(3, 6, 8)
    assert rung_deadlines(ID_SOP, step(ID_SOP, "cepat"), wib(3, 5, 15, 30)) == []


def test_the_service_deadline_counts_working_days() -> None:
    # a service time in whole days is a time limit in law: it ends at the close of the Nth
    # working day after the day of receipt (before, the same clock time on that day, which
    # let a deemed approval come hours early): received Tuesday 17 March 10:00, one working
    # day is Wednesday 25 March (18-24 are Nyepi, Idul Fitri and cuti bersama), until 16:00
    assert service_deadline(ID_SOP, wib(3, 17, 10)) == wib(3, 25, 16)
    # Makassar: received Wednesday 9 September, the 10th is the local holiday, Friday the
    # 11th closes at 11:30
    assert service_deadline(INLINE_SOP, wita(9, 9, 10)) == wita(9, 11, 11, 30)
    assert service_deadline(WITHOUT_SERVICE_TIME, wib(3, 17, 10)) is None


def test_paused_time_across_a_holiday_counts_only_working_seconds() -> None:
    # Tuesday 15:00-16:00, nothing from Wednesday 18 to Tuesday 24, Wednesday 07:30-09:00
    assert paused_working_seconds(ID_SOP, wib(3, 17, 15), wib(3, 25, 9)) == 2.5 * 3600
    # Makassar: Wednesday 14:00-15:00, the local holiday, Friday 08:00-10:00
    assert paused_working_seconds(INLINE_SOP, wita(9, 9, 14), wita(9, 11, 10)) == 3 * 3600
    # a pause entirely inside a weekend takes nothing off the clock
    assert paused_working_seconds(ID_SOP, wib(3, 7, 9), wib(3, 8, 17)) == 0


def test_a_pause_moves_the_service_deadline_by_the_working_time_it_took() -> None:
    # received Monday: due at the close of Tuesday 17 (the day of receipt does not count)
    opened = wib(3, 16, 10)
    frozen = service_deadline(ID_SOP, opened)
    assert frozen == wib(3, 17, 16)
    # paused Tuesday 09:00 to Wednesday 25 at 09:00: 7 h on Tuesday and 1.5 h on the 25th
    paused = paused_working_seconds(ID_SOP, wib(3, 17, 9), wib(3, 25, 9))
    assert paused == 8.5 * 3600
    # the 8.5 h added from Tuesday's close run all of the 25th (07:30-16:00): its close
    assert resumed_deadline(ID_SOP, frozen, paused) == wib(3, 25, 16)


def test_a_pause_that_took_no_working_time_leaves_the_deadline() -> None:
    frozen = wib(3, 17, 10)
    assert resumed_deadline(ID_SOP, frozen, 0) == frozen
    assert resumed_deadline(ID_SOP, frozen, 0.4) == frozen  # under half a second: none
    assert resumed_deadline(ID_SOP, frozen, -5) == frozen
    assert resumed_deadline(ID_SOP, frozen, 0.6) == frozen + timedelta(seconds=1)


def test_the_full_rung_is_the_deadline_even_where_working_seconds_would_stop_short() -> None:
    # entered before Monday's opening with `sla: 1d`: the deadline is Tuesday's opening;
    # Monday's 8.5 working hours counted from the entry would end at Monday's closing
    ladder = "  - {at: 50%, action: warn}\n  - {at: 100%, action: escalate, to: kasi}"
    sop = load_sop(source(PLAIN, ladder=ladder).replace("sla: 2h}", "sla: 1d}"))
    entered = wib(3, 2, 6)
    assert step_deadline(sop, step(sop, "daftar"), entered) == wib(3, 3, 7, 30)
    half, full = rung_deadlines(sop, step(sop, "daftar"), entered)
    assert (half.due, full.due) == (wib(3, 2, 11, 45), wib(3, 3, 7, 30))


def test_a_deadline_at_closing_time_stays_there_when_the_pause_took_nothing() -> None:
    closing = wib(3, 5, 16)  # Thursday's closing: adding nothing must not move it to Friday
    assert resumed_deadline(ID_SOP, closing, 0) == closing


@pytest.mark.parametrize("change", [{"clock": "paused"}, {"final": True}], ids=["paused", "final"])
def test_a_paused_or_final_step_has_no_deadline_even_with_an_sla(change: dict[str, object]) -> None:
    # the validator keeps such steps from carrying an sla; the clock does not rely on it
    timed = dataclasses.replace(step(ID_SOP, "daftar"), **change)  # type: ignore[arg-type]
    assert timed.sla is not None
    assert step_deadline(ID_SOP, timed, wib(3, 5, 10)) is None
    assert rung_deadlines(ID_SOP, timed, wib(3, 5, 10)) == []


def test_the_calendar_in_force_for_the_case_overrides_the_sops_own() -> None:
    # the register may put a case on another calendar than its SOP's: every clock follows it
    daftar, entered = step(ID_SOP, "daftar"), wib(3, 5, 15)  # Thursday 15:00
    assert step_deadline(ID_SOP, daftar, entered, ALWAYS) == wib(3, 5, 17)
    rungs = rung_deadlines(ID_SOP, daftar, entered, ALWAYS)
    assert [r.due for r in rungs] == [
        wib(3, 5, 15, 30), wib(3, 5, 16, 30), wib(3, 5, 17), wib(3, 5, 18), wib(3, 5, 19),
        wib(3, 5, 20),
    ]  # fmt: skip
    assert paused_working_seconds(ID_SOP, entered, wib(3, 6, 15), ALWAYS) == 24 * 3600
    assert resumed_deadline(ID_SOP, entered, 3600, ALWAYS) == wib(3, 5, 16)
