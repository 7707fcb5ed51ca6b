"""`sopflow calendar` on the embedded default database: the register from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.service.context import Context
from engine.settings import get_settings
from engine.store.tables import AuditEvent
from sopflow.cli import main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    get_settings.cache_clear()
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    yield url
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_add_show_and_remove_a_regency_holiday(database: str) -> None:
    code, out, _ = run(
        "calendar", "add", "2026-12-14", "--reason", "Keputusan Bupati 12/2026", "--opd", "dukcapil"
    )
    assert code == 0 and "2026-12-14" in out
    code, out, _ = run("calendar", "show", "2026", "--opd", "dukcapil")
    line = next(x for x in out.splitlines() if x.startswith("2026-12-14"))
    assert "decreed" in line and "Keputusan Bupati 12/2026" in line and "[dukcapil]" in line
    assert "Ramadan" in out and "estimated" in out  # no sidang isbat recorded for 2026
    reason = "Keputusan Bupati 13/2026"
    code, out, _ = run("calendar", "remove", "2026-12-14", "--reason", reason, "--opd", "dukcapil")
    assert code == 0
    assert "2026-12-14" not in run("calendar", "show", "2026", "--opd", "dukcapil")[1]
    # each change is in the trail with its reason
    with Context.from_url(database).reader() as uow:
        rows = uow.session.execute(
            select(AuditEvent.type, AuditEvent.data).where(AuditEvent.type.like("calendar.%"))  # type: ignore[attr-defined]
        ).all()
    assert [(t, d["reason"]) for t, d in rows] == [
        ("calendar.day_added", "Keputusan Bupati 12/2026"),
        ("calendar.day_removed", "Keputusan Bupati 13/2026"),
    ]


def test_a_decree_can_make_a_national_holiday_a_working_day(database: str) -> None:
    assert run("calendar", "remove", "2026-12-24", "--reason", "SKB amandemen")[0] == 0
    line = next(
        x for x in run("calendar", "show", "2026")[1].splitlines() if x.startswith("2026-12-24")
    )
    assert "working_day" in line and "SKB amandemen" in line


def test_ramadan_dates_make_the_year_decreed(database: str) -> None:
    code, out, _ = run("calendar", "ramadan", "2026", "2026-02-19", "2026-03-20",
                       "--reason", "Sidang isbat 17 Februari 2026")  # fmt: skip
    assert code == 0
    assert run("calendar", "show", "2026")[1].splitlines()[0] == (
        "2026: ok (holidays decreed, Ramadan decreed)"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("calendar", "add", "2026-13-01", "--reason", "x"), "not a date"),
        (("calendar", "add", "2026-12-01", "--reason", " "), "give the reason"),
        (("calendar", "remove", "2026-12-02", "--reason", "x"), "not a day off"),
        (("calendar", "ramadan", "2026", "2026-02-19", "2026-02-25", "--reason", "x"), "Ramadan"),
        (("calendar", "zone", "dukcapil", "Mars/Olympus", "--reason", "x"), "time zone"),
    ],
)
def test_bad_changes_exit_non_zero_in_plain_words(
    database: str, args: tuple[str, ...], words: str
) -> None:
    code, out, err = run(*args)
    assert code != 0 and words in err, (out, err)
