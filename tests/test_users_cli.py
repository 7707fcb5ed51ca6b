"""`sopflow user add|list|disable|enable|token` on the embedded default database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.service.context import Context
from engine.service.errors import Unauthenticated
from engine.service.users import authenticate
from engine.settings import get_settings
from engine.store.tables import AuditEvent
from sopflow.cli import main
from tests.conftest import WORKFLOWS


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    get_settings.cache_clear()
    assert run("db", "upgrade")[0] == 0
    yield url
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def login(url: str, token: str) -> str:
    """The user's name, or the 401's words."""
    try:
        return authenticate(Context.from_url(url), f"Bearer {token}").name
    except Unauthenticated as e:
        return e.detail


def events(url: str) -> list[tuple[str, str | None, dict[str, object]]]:
    with Context.from_url(url).reader() as uow:
        rows = uow.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
        return [(r.type, r.actor, dict(r.data)) for r in rows if r.type.startswith("user.")]


def test_a_name_with_a_line_break_or_space_is_refused(database: str) -> None:
    for name in ("sari\n", "sari ani", "sari\t", "sa\x07ri"):
        code, out, err = run("user", "add", name, "--opd", "dinsos", "--roles", "loket")
        assert code == 1 and out == "" and "no spaces, tabs or line breaks" in err, repr(name)
    assert run("user", "list")[2].startswith("no users")


def test_an_office_or_role_no_published_sop_uses_is_warned_with_the_closest(
    database: str,
) -> None:
    assert run("sop", "publish", str(WORKFLOWS))[0] == 0
    code, out, err = run("user", "add", "ani", "--opd", "dukcapil", "--roles", "loket")
    assert code == 0 and len(out.splitlines()[-1]) >= 40, "a warning does not refuse"
    assert "warning: no published SOP is served by office `dukcapil`" in err
    assert "did you mean `dispendukcapil`?" in err
    code, _out, err = run(
        "user", "add", "budi", "--opd", "dispendukcapil", "--roles", "lokett,kasi,operator_ctk"
    )
    assert code == 0
    assert "no published SOP gives role `lokett` to office `dispendukcapil`; did you mean " \
        "`loket`?" in err  # fmt: skip
    assert "`operator_ctk` to office `dispendukcapil`; did you mean `operator_cetak`?" in err
    assert "`kasi`" not in err
    code, _out, err = run("user", "add", "cici", "--opd", "dispendukcapil", "--roles", "loket")
    assert code == 0 and err == ""


def test_list_disable_enable_and_a_new_token_each_audited(database: str) -> None:
    token = run("user", "add", "sari", "--opd", "dinsos", "--roles", "loket")[1].splitlines()[-1]
    run("user", "add", "irma", "--inspector")
    code, out, _ = run("user", "list", "--opd", "dinsos")
    assert code == 0 and "sari" in out and "irma" not in out and "active" in out
    assert login(database, token) == "sari"

    assert run("user", "disable", "sari")[0] == 0
    assert "disabled" in login(database, token)
    assert "disabled" in run("user", "list")[1]
    assert run("user", "enable", "sari")[0] == 0
    assert login(database, token) == "sari"

    code, out, _ = run("user", "token", "sari")
    new = out.splitlines()[-1]
    assert code == 0 and new != token and " " not in new and len(new) >= 40
    assert "sopflow user token" in login(database, token), "the old token stops at once"
    assert login(database, new) == "sari"

    assert [(kind, data["user"]) for kind, _actor, data in events(database)] == [
        ("user.created", "sari"),
        ("user.created", "irma"),
        ("user.disabled", "sari"),
        ("user.enabled", "sari"),
        ("user.token_issued", "sari"),
    ]
    assert all(actor and actor.startswith("cli:") for _k, actor, _d in events(database)[2:])
    code, _out, err = run("user", "disable", "nobody")
    assert code == 1 and "no user `nobody`" in err


def test_tokens_expire(database: str) -> None:
    code, out, _ = run("user", "add", "sari", "--opd", "dinsos", "--expires-in", "90d")
    assert code == 0
    listed = run("user", "list")[1]
    soon = datetime.now(UTC) + timedelta(days=90)
    assert soon.date().isoformat() in listed or (soon - timedelta(days=1)).date().isoformat() \
        in listed  # fmt: skip
    assert login(database, out.splitlines()[-1]) == "sari"
    code, _out, err = run("user", "token", "sari", "--expires-in", "2001-01-01")
    assert code == 1 and "not in the future" in err
    code, _out, err = run("user", "token", "sari", "--expires-in", "soon")
    assert code == 1 and "90d" in err
    # a token whose instant has passed is refused, saying so
    ctx = Context.from_url(database)
    later = Context(ctx.engine, lambda: datetime.now(UTC) + timedelta(days=91))
    token = run("user", "token", "sari", "--expires-in", "90d")[1].splitlines()[-1]
    with pytest.raises(Unauthenticated, match="this token expired at .*sopflow user token"):
        authenticate(later, f"Bearer {token}")
    assert authenticate(ctx, f"Bearer {token}").name == "sari"
