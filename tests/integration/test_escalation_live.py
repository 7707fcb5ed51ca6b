"""Escalation in real time, with real processes: the embedded broker, Redis, crashes.

A 24x7 SOP with a ladder in seconds (`tests/sops/second-ladder.yaml`: sla 4s, rungs at
50 %, 100 % and 200 %, service time 10s) lets each test watch rungs fall due and fire.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from engine.service import cases
from engine.service.context import Context
from engine.service.sops import publish_sop
from engine.service.users import Principal, add_user
from engine.store.audit import verify
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from engine.store.tables import AuditEvent, Case, SlaFiring, SlaTimer
from tests.conftest import ROOT, service_missing
from tests.integration.conftest import free_port

LADDER = ROOT / "tests" / "sops" / "second-ladder.yaml"
INTERVAL = 1.0
RUNGS_PER_CASE = 4  # warn, kasi, kadis, and the service time
LATE_BOUND = 15.0  # seconds: generous, so that a loaded machine does not fail the test


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class Process:
    """A child process in its own group, so a kill reaches everything it started."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.args, self.env, self.cwd, self.log = args, env, cwd, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def stop(self) -> None:
        self.signal(signal.SIGTERM)


@dataclass
class Site:
    """A database with the second-ladder SOP published, and the processes running on it."""

    url: str
    ctx: Context
    tmp: Path
    loket: Principal
    token: str
    processes: list[Process]
    env: dict[str, str]

    def run(self, *args: str, name: str, **env: str) -> Process:
        process = Process(
            [sys.executable, "-m", "sopflow", *args],
            {**self.env, **env},
            self.tmp,
            self.tmp / f"{name}.log",
        )
        self.processes.append(process)
        return process

    def open_case(self, paused: bool = False) -> str:
        case = cases.open_case(self.ctx, self.loket, "detik")
        if paused:
            cases.fire_transition(self.ctx, self.loket, str(case["id"]), "kembalikan", "KK")
        return str(case["id"])

    def sla_events(self, case_id: str | None = None) -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.type.like("sla.%"))  # type: ignore[attr-defined]
        if case_id is not None:
            query = query.where(AuditEvent.case_id == case_id)
        with self.ctx.uow() as uow:
            return list(uow.session.execute(query.order_by(AuditEvent.seq)).scalars())

    def count(self, table: type) -> int:
        with self.ctx.uow() as uow:
            return int(uow.session.execute(select(func.count()).select_from(table)).scalar_one())


def make_site(url: str, tmp: Path, clock: Callable[[], datetime] | None = None) -> Iterator[Site]:
    engine = make_engine(url)
    upgrade(engine)
    ctx = Context(engine) if clock is None else Context(engine, clock)
    admin, _ = add_user(ctx, "admin", opd="dinas-detik", admin=True)
    publish_sop(ctx, admin, LADDER.read_bytes())
    loket, token = add_user(ctx, "loket", opd="dinas-detik", roles=("loket",))
    add_user(ctx, "kasi", opd="dinas-detik", roles=("kasi",))
    add_user(ctx, "kadis", opd="dinas-detik", roles=("kadis",))
    env = {
        **os.environ,
        "SOPFLOW_DATABASE_URL": url,
        "SOPFLOW_TIMER_INTERVAL": str(INTERVAL),
        "SOPFLOW_DATA_DIR": str(tmp / "data"),
    }
    env.pop("SOPFLOW_BROKER_URL", None)
    site = Site(url, ctx, tmp, loket, token, [], env)
    try:
        yield site
    finally:
        for process in site.processes:
            process.stop()
        engine.dispose()


class Redis:
    """A Redis server of the test's own, which the test may stop and start again."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", FileNotFoundError("redis-server is not installed"))
        self.port = free_port()
        self.process = Process(
            [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            dict(os.environ), tmp, tmp / "redis.log",
        )  # fmt: skip
        self.wait_ready()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_ready(self) -> None:
        import socket

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(ready, 10, "redis to answer")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    yield server
    server.process.stop()


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(f"sqlite:///{tmp_path / 'live.db'}", tmp_path)


@pytest.fixture
def postgres_site(own_postgres_url: str, tmp_path: Path) -> Iterator[Site]:
    yield from make_site(own_postgres_url, tmp_path)


def swept_twice_more(site: Site) -> None:
    """Wait for two more sweeps to finish: the later of them began after this call, so a
    second firing of anything due now would show (a sweep counter, not a guessed sleep)."""
    start = datetime.now(UTC)
    for _ in range(2):
        wait_until(lambda after=start: (_last_sweep(site) or after) > after, 60, "a sweep")
        start = _last_sweep(site) or start


def assert_ladder_fired_on_time(site: Site, case_id: str) -> None:
    wait_until(lambda: len(site.sla_events(case_id)) >= RUNGS_PER_CASE, 90, "every rung to fire")
    swept_twice_more(site)
    events = site.sla_events(case_id)
    kinds = [(e.type, e.data.get("at")) for e in events]
    assert sorted(kinds, key=str) == sorted(
        [("sla.warned", "50%"), ("sla.escalated", "100%"), ("sla.escalated", "200%"),
         ("sla.service_breached", None)], key=str,
    )  # fmt: skip
    for event in events:
        # never early; late by a sweep interval on an idle machine, by more on a loaded one
        late = event.data["lateness_seconds"]
        assert 0 <= late <= LATE_BOUND, f"{event.type} fired {late} s after it was due"


def test_one_command_serves_and_escalates_on_the_embedded_broker(sqlite_site: Site) -> None:
    port = free_port()
    sqlite_site.run("serve", "--port", str(port), name="serve")
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            body = httpx.get(f"{base}/healthz", timeout=1).json()
        except (httpx.HTTPError, ValueError):
            return False
        return bool(body["broker"] == "ok" and body["timers"]["status"] == "ok")

    wait_until(healthy, 40, "the server and its embedded worker")
    headers = {"Authorization": f"Bearer {sqlite_site.token}"}
    running = httpx.post(f"{base}/api/v1/cases", json={"sop": "detik"}, headers=headers).json()
    paused = sqlite_site.open_case(paused=True)
    assert_ladder_fired_on_time(sqlite_site, running["id"])
    assert sqlite_site.sla_events(paused) == []
    case = httpx.get(f"{base}/api/v1/cases/{running['id']}", headers=headers).json()
    assert case["escalation_level"] == 2 and "inspectorate" in case["flags"]


def test_a_separate_worker_on_redis_escalates_on_time(postgres_site: Site, redis: Redis) -> None:
    postgres_site.run("worker", name="worker", SOPFLOW_BROKER_URL=redis.url)
    wait_until(lambda: _swept(postgres_site), 40, "the worker's first sweep")
    running = postgres_site.open_case()
    paused = postgres_site.open_case(paused=True)
    assert_ladder_fired_on_time(postgres_site, running)
    assert postgres_site.sla_events(paused) == []


def _last_sweep(site: Site) -> datetime | None:
    from engine.service.timers import last_sweep

    return last_sweep(site.ctx)


def _swept(site: Site) -> bool:
    return _last_sweep(site) is not None


def _timers_due(site: Site, case_id: str) -> datetime:
    """When the last of a case's timers falls due."""
    with site.ctx.uow() as uow:
        pk = uow.session.execute(select(Case.pk).where(Case.id == case_id)).scalar_one()
        last = select(func.max(SlaTimer.due_at)).where(SlaTimer.case_pk == pk)
        due = uow.session.execute(last).scalar_one()
    assert due is not None, "the case has timers"
    return due  # type: ignore[no-any-return]


def test_a_worker_killed_mid_sweep_misses_no_rung_and_fires_none_twice(
    own_postgres_url: str, tmp_path: Path, redis: Redis
) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    with contextmanager(make_site)(own_postgres_url, tmp_path, clock=lambda: past) as site:
        total = 600  # 2,400 rungs due at once
        for _ in range(total):
            site.open_case()
        expected = total * RUNGS_PER_CASE
        assert site.count(SlaTimer) == expected
        worker = site.run("worker", name="worker", SOPFLOW_BROKER_URL=redis.url)
        wait_until(lambda: site.count(SlaFiring) > 0, 60, "the sweep to start firing")
        worker.signal(signal.SIGKILL)
        killed_at = site.count(SlaFiring)
        assert 0 < killed_at < expected, "the kill must land in the middle of the work"
        # two workers now, each with its own scheduler: they sweep at once
        for name in ("worker-a", "worker-b"):
            site.run("worker", name=name, SOPFLOW_BROKER_URL=redis.url,
                     SOPFLOW_DATA_DIR=str(tmp_path / name))  # fmt: skip
        wait_until(lambda: site.count(SlaTimer) == 0, 120, "every timer to be fired")
        assert site.count(SlaFiring) == expected
        events = site.sla_events()
        assert len(events) == expected
        assert len({(e.case_id, e.type, e.data.get("at")) for e in events}) == expected
        with site.ctx.uow() as uow:
            assert verify(uow.session).ok


def test_rungs_due_while_redis_is_down_fire_once_it_is_back(
    postgres_site: Site, redis: Redis
) -> None:
    postgres_site.run("worker", name="worker", SOPFLOW_BROKER_URL=redis.url)
    wait_until(lambda: _swept(postgres_site), 40, "the worker's first sweep")
    case = postgres_site.open_case()
    last_due = _timers_due(postgres_site, case)
    redis.process.stop()
    # every rung of the case falls due while the broker is away
    wait_until(lambda: datetime.now(UTC) > last_due, 60, "the case's last rung to fall due")
    assert postgres_site.sla_events(case) == []
    redis.process.start()
    redis.wait_ready()
    wait_until(lambda: len(postgres_site.sla_events(case)) >= RUNGS_PER_CASE, 90, "the rungs")
    swept_twice_more(postgres_site)
    events = postgres_site.sla_events(case)
    assert len(events) == RUNGS_PER_CASE
    assert len({(e.type, e.data.get("at")) for e in events}) == RUNGS_PER_CASE


def test_two_api_processes_and_two_workers_behave_like_one(
    postgres_site: Site, redis: Redis
) -> None:
    broker = {"SOPFLOW_BROKER_URL": redis.url}
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        postgres_site.run("serve", "--port", str(port), name=f"api-{i}", **broker)
    # the compose stack's shape: one scheduler, workers without their own
    postgres_site.run("beat", name="beat", **broker)
    postgres_site.run("worker", "--no-beat", name="worker-a", **broker)
    postgres_site.run("worker", "--no-beat", name="worker-b", **broker)
    bases = [f"http://127.0.0.1:{port}" for port in ports]

    def up() -> bool:
        try:
            return all(httpx.get(f"{b}/healthz", timeout=1).status_code == 200 for b in bases)
        except httpx.HTTPError:
            return False

    wait_until(up, 40, "both API processes")
    headers = {"Authorization": f"Bearer {postgres_site.token}"}
    clients = [httpx.Client(base_url=b, headers=headers, timeout=30) for b in bases]
    try:
        # a case opened through one process is the same case through the other
        case = clients[0].post("/api/v1/cases", json={"sop": "detik"}).json()
        assert clients[1].get(f"/api/v1/cases/{case['id']}").json()["version"] == 1
        # sixteen identical transitions, split across the two processes: one wins
        barrier = threading.Barrier(16)
        statuses: list[int] = []

        def press(i: int) -> None:
            with httpx.Client(base_url=bases[i % 2], headers=headers, timeout=30) as c:
                barrier.wait()
                path = f"/api/v1/cases/{case['id']}/transitions"
                statuses.append(c.post(path, json={"name": "terima"}).status_code)

        threads = [threading.Thread(target=press, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] + [409] * 15
        # a case left waiting escalates exactly once, with two workers sweeping
        waiting = clients[1].post("/api/v1/cases", json={"sop": "detik"}).json()
        assert_ladder_fired_on_time(postgres_site, waiting["id"])
        with postgres_site.ctx.uow() as uow:
            assert verify(uow.session).ok
    finally:
        for c in clients:
            c.close()
