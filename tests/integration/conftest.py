"""A real sopflow server (gunicorn, two workers) on SQLite and on PostgreSQL.

Each backend gets a fresh database, migrated with `sopflow db upgrade`'s code, and one
server process for the whole session. Tests keep out of each other's way by working in
offices (OPDs) and SOP keys of their own, made unique by `Server.office()`.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from engine.service.context import Context
from engine.service.users import add_user
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from tests.conftest import POSTGRES_URL, ROOT, service_missing

TEST_SOP = ROOT / "tests" / "sops" / "surat-izin.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Office:
    """An OPD of the test's own, with its SOP published and helpers to act in it."""

    server: Server
    opd: str
    sop: str
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.admin = self.server.client(f"admin-{self.opd}", opd=self.opd, admin=True)

    def staff(self, *roles: str, name: str | None = None) -> httpx.Client:
        """A client for a new member of this office's staff holding `roles`."""
        who = name or f"{'-'.join(roles) or 'staff'}-{secrets.token_hex(3)}-{self.opd}"
        return self.server.client(who, opd=self.opd, roles=roles)

    def sop_text(self, path: Path = TEST_SOP, version: int = 1) -> str:
        """The test SOP rewritten into this office, under this office's key."""
        text = path.read_text()
        text = text.replace("sop: surat-izin", f"sop: {self.sop}")
        text = text.replace("opd: dinas-uji", f"opd: {self.opd}")
        return text.replace("version: 1", f"version: {version}")

    def publish(self, text: str | None = None) -> httpx.Response:
        """Publish (the test SOP by default) as this office's admin."""
        return self.admin.post(
            "/api/v1/sops",
            content=(text or self.sop_text()).encode(),
            headers={"Content-Type": "application/yaml"},
        )

    def open_case(self, client: httpx.Client, **fields: object) -> dict[str, object]:
        """Open a case on this office's SOP with valid applicant data."""
        body = {
            "sop": self.sop,
            "fields": {"nik": "3201234567890001", "nama": "Budi Santoso", **fields},
            "received": ["ktp"],
        }
        response = client.post("/api/v1/cases", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


@dataclass
class Server:
    """A running sopflow server and a context on its database."""

    backend: str
    base_url: str
    ctx: Context
    clients: list[httpx.Client] = field(default_factory=list)
    log: Path | None = None  # the server's output: JSON lines

    def client(self, name: str | None = None, **kind: object) -> httpx.Client:
        """An HTTP client authenticated as a new user of that kind (anonymous without name)."""
        headers = {}
        if name is not None:
            _who, token = add_user(self.ctx, name, **kind)  # type: ignore[arg-type]
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def office(self, publish: bool = True) -> Office:
        """A fresh OPD with the test SOP published in it."""
        suffix = secrets.token_hex(4)
        office = Office(self, f"opd-{suffix}", f"izin-{suffix}")
        if publish:
            response = office.publish()
            assert response.status_code == 201, response.text
        return office


def _postgres_database() -> Iterator[str]:
    name = f"sopflow_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        service_missing("PostgreSQL", e)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session."""
    yield from _postgres_database()


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test alone (for tests that sweep all)."""
    yield from _postgres_database()


def start_server(url: str, tmp: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `sopflow serve` on `url` (with `env` on top) until the session ends; yields its
    base URL."""
    port = free_port()
    # The shared servers answer every test from 127.0.0.1, and some tests send hundreds of
    # wrong tokens on purpose: a lockout there would fail tests about something else. The
    # lockout itself is shown on servers of its own (test_security.py).
    unlimited = {"SOPFLOW_AUTH_FAILURE_LIMIT": "1000000"}
    env = {**os.environ, **unlimited, "SOPFLOW_DATABASE_URL": url, **(env or {})}
    log = (tmp / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sopflow", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the server did not start: {(tmp / log.name).read_text()}")
        time.sleep(0.1)
    try:
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            # a graceful stop takes seconds (the embedded worker finishes its task); on a
            # loaded machine more than ten
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def server_of_its_own(backend: str, tmp: Path, env: dict[str, str]) -> Iterator[Server]:
    """A server on a fresh database of its own, with `env` on top of the environment: for
    tests that change server settings or sweep every timer."""
    databases = (
        iter([f"sqlite:///{tmp / 'sopflow.db'}"]) if backend == "sqlite" else _postgres_database()
    )
    for url in databases:
        engine = make_engine(url)
        upgrade(engine)
        running = Server(backend, "", Context(engine))
        for base in start_server(url, tmp, env):
            running.base_url = base
            running.log = next(tmp.glob("server-*.log"))
            yield running
            for client in running.clients:
                client.close()
        engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A sopflow server on each database."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'sopflow.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade(engine)
    context = Context(engine)
    running = Server(request.param, "", context)
    for base in start_server(url, tmp):
        running.base_url = base
        running.log = next(tmp.glob("server-*.log"))
        yield running
        for client in running.clients:
            client.close()
    engine.dispose()
