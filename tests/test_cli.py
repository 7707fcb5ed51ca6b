"""The `sopflow` command on the embedded default database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.service.context import Context
from engine.service.users import authenticate
from engine.settings import get_settings
from sopflow.cli import main
from tests.conftest import WORKFLOWS


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_db_upgrade_creates_the_database(database: str) -> None:
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "up to date" in out
    assert run("db", "upgrade")[0] == 0


def test_user_add_prints_a_working_token_alone_on_the_last_line(database: str) -> None:
    run("db", "upgrade")
    code, out, _ = run("user", "add", "sari", "--opd", "dinsos", "--roles", "loket,kasi")
    assert code == 0
    token = out.splitlines()[-1]
    assert token.strip() == token and " " not in token and len(token) >= 40
    who = authenticate(Context.from_url(database), f"Bearer {token}")
    assert (who.name, who.opd, who.roles) == ("sari", "dinsos", frozenset({"loket", "kasi"}))


def test_user_add_refuses_an_inspector_with_an_office(database: str) -> None:
    run("db", "upgrade")
    code, out, err = run("user", "add", "irma", "--inspector", "--opd", "dinsos")
    assert code == 1 and out == "" and "inspector belongs to no OPD" in err


def test_sop_publish_publishes_every_sample_once(database: str) -> None:
    run("db", "upgrade")
    code, out, _ = run("sop", "publish", str(WORKFLOWS))
    samples = sorted(WORKFLOWS.glob("*.yaml"))
    assert code == 0 and out.count(" published\n") == len(samples)
    code, out, _ = run("sop", "publish", str(WORKFLOWS))
    assert code == 0 and out.count("unchanged") == len(samples)


def test_sop_publish_of_a_broken_file_exits_1_with_its_problems(database: str) -> None:
    run("db", "upgrade")
    broken = WORKFLOWS.parent / "tests" / "sops" / "broken" / "unknown_key.yaml"
    code, _out, err = run("sop", "publish", str(broken))
    assert code == 1 and "unknown key `tittle`" in err
