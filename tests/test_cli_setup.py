"""Every command answers a setup mistake in a line or two, exit status 1, nothing created.

A missing, empty, wrongly named or unreachable database is the first thing a new user
meets; the answer says what to do next, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.settings import get_settings
from sopflow.cli import main
from tests.conftest import POSTGRES_URL, WORKFLOWS

USING_THE_DATABASE = [
    ["user", "add", "sari", "--opd", "dispendukcapil", "--roles", "loket"],
    ["sop", "publish", str(WORKFLOWS / "ktp-el.yaml")],
    ["opd", "webhook", "dispendukcapil"],
    ["worker"],
]
CREATING_THE_DATABASE = [["db", "upgrade"], ["serve", "--port", "1"]]


@pytest.fixture
def database_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def use(url: str) -> None:
        monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def run(args: list[str]) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, lines


def refused(args: list[str], *words: str) -> None:
    code, lines = run(args)
    assert code == 1, (args, lines)
    assert 1 <= len(lines) <= 2, (args, lines)
    for word in words:
        assert word in " ".join(lines), (args, lines)


@pytest.mark.parametrize("args", USING_THE_DATABASE, ids=lambda a: " ".join(a[:2]))
def test_a_missing_sqlite_file_is_named_and_not_created(
    args: list[str], database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    database = tmp_path / "sopflow.db"
    database_url(f"sqlite:///{database}")
    refused(args, str(database), 'run "sopflow db upgrade" first')
    assert not database.exists()


@pytest.mark.parametrize("args", USING_THE_DATABASE, ids=lambda a: " ".join(a[:2]))
def test_an_empty_database_asks_for_an_upgrade(
    args: list[str], database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    database = tmp_path / "sopflow.db"
    database.touch()
    database_url(f"sqlite:///{database}")
    refused(args, "empty", 'run "sopflow db upgrade" first')


@pytest.mark.parametrize(
    "args", USING_THE_DATABASE + CREATING_THE_DATABASE, ids=lambda a: " ".join(a[:2])
)
@pytest.mark.parametrize(
    "url, words",
    [
        ("mysql://root@127.0.0.1/test", ["SOPFLOW_DATABASE_URL"]),
        ("not a url at all", ["SOPFLOW_DATABASE_URL"]),
        ("postgresql://postgres@127.0.0.1:1/test", ["cannot reach PostgreSQL", "127.0.0.1:1"]),
        (
            POSTGRES_URL.rsplit("/", 1)[0] + "/sopflow_no_such_database",
            ['database "sopflow_no_such_database" does not exist'],
        ),
    ],
    ids=["wrong-url", "not-a-url", "unreachable", "no-such-database"],
)
def test_a_wrong_or_unreachable_database_is_one_plain_line(
    args: list[str], url: str, words: list[str], database_url  # type: ignore[no-untyped-def]
) -> None:
    database_url(url)
    refused(args, *words)
