"""The service runs as a role that can append to the trail and never rewrite it.

The migrations run as the tables' owner (`sopflow db upgrade --service-role NAME`); the
service connects as NAME. That role may not UPDATE, DELETE or TRUNCATE the trail, nor drop
or disable the triggers that guard it; and the whole service works under it.
"""

from __future__ import annotations

import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from engine.service.context import Context
from engine.service.users import add_user
from engine.settings import Settings, get_settings
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from sopflow.cli import main
from tests.conftest import POSTGRES_URL
from tests.integration.conftest import TEST_SOP, start_server

pytestmark = pytest.mark.postgres


@pytest.fixture
def service_role(own_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A service role made by `sopflow db upgrade --service-role`; its URL."""
    role = f"sopflow_service_{secrets.token_hex(3)}"
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", own_postgres_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["db", "upgrade", "--service-role", role])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"created role {role}" in result.output
    base, database = own_postgres_url.rsplit("/", 1)
    host = base.split("@", 1)[1]
    try:
        yield f"postgresql://{role}@{host}/{database}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'someone else'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
        "DROP TRIGGER audit_event_no_change ON audit_event",
        "ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change",
        "ALTER TABLE audit_event DISABLE TRIGGER ALL",
        "DROP TABLE audit_event",
        "ALTER TABLE audit_event RENAME TO audit_event_old",
    ],
)
def test_the_service_role_cannot_rewrite_the_trail(service_role: str, statement: str) -> None:
    with psycopg.connect(service_role) as connection:
        connection.execute("SELECT count(*) FROM audit_event")  # it may read it
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(statement)


def test_the_service_works_as_its_role(service_role: str, tmp_path: Path) -> None:
    owner = Context(make_engine(service_role))
    _who, admin_token = add_user(owner, "admin-role", opd="dinas-uji", admin=True)
    _who, staff_token = add_user(owner, "staff-role", opd="dinas-uji", roles=("loket",))
    for base in start_server(service_role, tmp_path):
        admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin_token}"})
        staff = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {staff_token}"})
        with admin, staff:
            published = admin.post(
                "/api/v1/sops",
                content=TEST_SOP.read_bytes(),
                headers={"Content-Type": "application/yaml"},
            )
            assert published.status_code == 201, published.text
            opened = staff.post(
                "/api/v1/cases",
                json={
                    "sop": "surat-izin",
                    "fields": {"nik": "3201234567890001", "nama": "Budi Santoso"},
                    "received": ["ktp"],
                },
            )
            assert opened.status_code == 201, opened.text
            case = opened.json()
            fired = staff.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"})
            assert fired.status_code == 200, fired.text
            verified = admin.get("/api/v1/audit/verify")
            assert verified.status_code == 200 and verified.json()["ok"], verified.text
    owner.engine.dispose()


def test_a_service_role_on_sqlite_is_refused_in_plain_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["db", "upgrade", "--service-role", "svc"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "PostgreSQL" in result.output and "Traceback" not in result.output


def test_the_sqlite_file_and_data_folder_are_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    database = tmp_path / "sopflow.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    engine.dispose()
    settings = Settings(data_dir=tmp_path / "data")
    folder = settings.private_folder("broker", "in")
    for path in (tmp_path / "data", tmp_path / "data" / "broker", folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
