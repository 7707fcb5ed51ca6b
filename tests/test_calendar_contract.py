"""A working calendar's contract at its edges: the length of a working day, and the plain
words of every refusal of a calendar or a duration that cannot be."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from engine.domain.calendar import WorkingCalendar, calendar_for, nominal_day_seconds
from engine.domain.durations import Duration
from engine.domain.model import ID_WORKING, CalendarSpec

NINE_TO_FOUR = ((time(9), time(16)),) * 5 + (None, None)


def spec(
    hours: tuple[tuple[time, time] | None, ...], timezone: str = "Asia/Jakarta"
) -> CalendarSpec:
    return CalendarSpec("uji", timezone, hours, False)


def test_a_working_day_is_as_long_as_its_longest_opening() -> None:
    assert nominal_day_seconds(ID_WORKING.hours) == 9 * 3600  # Friday 07:30-16:30
    assert calendar_for(ID_WORKING).nominal_day_seconds == 9 * 3600
    # minutes and seconds both count
    assert nominal_day_seconds([(time(8, 0, 30), time(16, 15)), None]) == 8 * 3600 + 870
    assert nominal_day_seconds([(time(20), time(0))]) == 4 * 3600  # to midnight
    assert nominal_day_seconds([None] * 7) == 0


@pytest.mark.parametrize(
    ("hours", "timezone", "words"),
    [
        (NINE_TO_FOUR[:5], "Asia/Jakarta", "calendar `uji` needs hours for 7 weekdays"),
        (
            ((time(9), time(9)),) + NINE_TO_FOUR[1:],
            "Asia/Jakarta",
            "calendar `uji`: closing 09:00:00 is not after opening 09:00:00",
        ),
        (
            ((time(9), time(8)),) + NINE_TO_FOUR[1:],
            "Asia/Jakarta",
            "calendar `uji`: closing 08:00:00 is not after opening 09:00:00",
        ),
        ((None,) * 7, "Asia/Jakarta", "calendar `uji` has no working hours on any day"),
        (NINE_TO_FOUR, "Asia/Atlantis", "`Asia/Atlantis` is not a known time zone"),
    ],
    ids=["six-days", "closing-at-opening", "closing-before-opening", "never-open", "no-zone"],
)
def test_a_calendar_that_cannot_be_is_refused_in_plain_words(
    hours: tuple[tuple[time, time] | None, ...], timezone: str, words: str
) -> None:
    with pytest.raises(ValueError) as refused:
        WorkingCalendar(spec(hours, timezone))
    assert str(refused.value) == words


def test_a_negative_duration_is_refused_in_plain_words() -> None:
    with pytest.raises(ValueError, match=r"^duration `.*` is negative$"):
        calendar_for(ID_WORKING).add(datetime(2026, 3, 2, 3, tzinfo=UTC), Duration.of_seconds(-5))
