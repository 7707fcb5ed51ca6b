"""Case transitions through the HTTP API on PostgreSQL, side by side with bare Flask.

    .venv/bin/python bench/transitions.py [--clients 16] [--seconds 20] [--workers 2]

One run:

1. creates a fresh PostgreSQL database, migrates it, publishes a two-step benchmark SOP
   (`maju` a→b, `mundur` b→a) through the service layer, creates one staff user per client
   and opens one case per client;
2. starts the real server (`python -m sopflow serve`) and, as the peer, a bare Flask JSON
   endpoint (bench/bare_flask.py) under gunicorn with the same workers, worker class and
   access log;
3. drives both with the same load generator: N clients spread over a few OS processes with
   a few threads each, every client on its own connection firing `maju`, `mundur`, … on
   its own case (or POSTing to the bare endpoint), for a fixed time after a warm-up;
4. alternates bare, sopflow, bare, sopflow, … (3 rounds by default) and reports medians,
   the ratio of the two, where the machine's CPU went, whether the audit chain verifies
   with exactly the events expected, and (with py-spy installed) one worker's profile;
5. stops both servers and drops the database.

The load generator shares the machine's cores with the servers and PostgreSQL; the output
says how much CPU it took.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script, this file's folder comes first on sys.path, and this file would shadow
# the `transitions` package the engine imports: put the repository there instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get(
    "SOPFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HOST = "127.0.0.1"
OPD = "dinas-bench"
SOP_KEY = "bench-maju-mundur"
SOP_YAML = f"""\
# written by bench/transitions.py: two working steps to go back and forth between
sop: {SOP_KEY}
version: 1
opd: {OPD}
title: Benchmark maju/mundur
calendar: 24x7
roles:
  petugas: Petugas
steps:
  - {{id: a, name: Langkah A, role: petugas, sla: 1h}}
  - {{id: b, name: Langkah B, role: petugas, sla: 1h}}
  - {{id: tuntas, name: Tuntas, final: true, outcome: completed}}
transitions:
  - {{name: maju, from: a, to: b}}
  - {{name: mundur, from: b, to: a}}
  - {{name: selesai, from: b, to: tuntas}}
"""
NEXT = {"a": "maju", "b": "mundur"}
AFTER = {"maju": "b", "mundur": "a"}
BARE_BODY = json.dumps({"name": "maju"}).encode()
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- the load generator (runs in child processes) -------------------------------------------


@dataclass
class Job:
    """One client: what it sends. `case_id` None means the bare endpoint."""

    case_id: str | None = None
    token: str = ""
    step: str = "a"


@dataclass
class ThreadResult:
    latencies_ms: list[float] = field(default_factory=list)  # completed inside the window
    ok_window: int = 0
    errors_window: int = 0
    ok_total: int = 0  # every 200, warm-up and tail included (each is one audit event)
    errors_total: int = 0
    unknown_total: int = 0  # connection failures: the server may or may not have committed
    closed: int = 0  # responses after which the server closed the connection
    samples: list[str] = field(default_factory=list)
    case_id: str | None = None
    step: str = "a"  # where the client left its case


class Connection:
    """A minimal HTTP/1.1 client connection, kept alive unless the server closes it.

    http.client parses every response's headers with the email package, which costs about
    as much CPU as a bare Flask request; this reads the status, Content-Length and
    Connection headers and nothing else, so the load generator takes less of the cores it
    shares with the servers.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.opened = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _recv(self, sock: socket.socket) -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before a full response")
        self.buffer += chunk

    def request(self, method: str, path: str, headers: bytes, body: bytes = b"") -> Reply:
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.opened += 1
        sock = self.sock
        head = f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n".encode()
        sock.sendall(head + headers + b"\r\n" + body)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._recv(sock)
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        status, length, close = int(lines[0].split(" ", 2)[1]), 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value.strip().lower() == "close"
            elif name == "transfer-encoding":
                raise ConnectionError("chunked responses are not supported")
        total = end + 4 + length
        while len(self.buffer) < total:
            self._recv(sock)
        reply = Reply(status, self.buffer[end + 4 : total], close)
        self.buffer = self.buffer[total:]
        if close:
            self.close()
        return reply


@dataclass
class Reply:
    status: int
    body: bytes
    closed: bool


def _headers(job: Job) -> bytes:
    lines = [f"Host: {HOST}", "Content-Type: application/json", "Accept: application/json"]
    if job.case_id is not None:
        lines.append(f"Authorization: Bearer {job.token}")
    return "".join(f"{line}\r\n" for line in lines).encode()


def _sleep_until(instant: float) -> None:
    """Sleep until time.monotonic() reaches `instant` (no busy polling: the cores are shared)."""
    while (left := instant - time.monotonic()) > 0:
        time.sleep(left)


def _resync(conn: Connection, job: Job) -> str:
    """The case's current step, read back after a failure."""
    reply = conn.request("GET", f"/api/v1/cases/{job.case_id}", _headers(job))
    return str(json.loads(reply.body)["step"]) if reply.status == 200 else job.step


def _client(
    port: int, job: Job, start: float, window: float, end: float, out: ThreadResult
) -> None:
    headers = _headers(job)
    conn = Connection(port)
    path = "/" if job.case_id is None else f"/api/v1/cases/{job.case_id}/transitions"
    bodies = {n: json.dumps({"name": n}).encode() for n in ("maju", "mundur")}
    step = job.step
    _sleep_until(start)
    monotonic = time.monotonic
    while True:
        t0 = monotonic()
        if t0 >= end:
            break
        name = NEXT.get(step, "maju")
        body = BARE_BODY if job.case_id is None else bodies[name]
        try:
            reply = conn.request("POST", path, headers, body)
            status, data = reply.status, reply.body
            out.closed += reply.closed
        except (OSError, ValueError, IndexError) as e:
            conn.close()
            status, data = 0, repr(e).encode()
        t1 = monotonic()
        counted = window <= t1 <= end
        if status == 200:
            out.ok_total += 1
            step = AFTER[name]
            if counted:
                out.ok_window += 1
                out.latencies_ms.append((t1 - t0) * 1000.0)
            continue
        if status == 0:
            out.unknown_total += 1
        out.errors_total += 1
        out.errors_window += counted
        if len(out.samples) < 3:
            out.samples.append(f"{status}: {data[:300].decode(errors='replace')}")
        if job.case_id is not None:
            try:
                step = _resync(conn, Job(job.case_id, job.token, step))
            except (OSError, ValueError, IndexError, KeyError):
                conn.close()
    conn.close()
    out.case_id, out.step = job.case_id, step


def _client_process(
    port: int, jobs: list[Job], start: float, window: float, end: float, queue: Any
) -> None:
    results = [ThreadResult() for _ in jobs]
    threads = [
        threading.Thread(target=_client, args=(port, job, start, window, end, r), daemon=True)
        for job, r in zip(jobs, results, strict=True)
    ]
    for t in threads:
        t.start()
    _sleep_until(window)
    cpu0 = time.process_time()
    _sleep_until(end)
    cpu = time.process_time() - cpu0
    for t in threads:
        t.join()
    queue.put((cpu, results))


# ---- CPU accounting from /proc ----------------------------------------------------------------


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])  # guest time is already counted in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _tree(pid: int) -> list[int]:
    return [pid] + [p for c in _children(pid) for p in _tree(c)]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def server_processes(master: int) -> tuple[list[int], list[int]]:
    """(gunicorn's master and workers, anything else the server runs beside them), e.g.
    the Celery worker that `sopflow serve` starts on an embedded broker."""
    own = _cmdline(master)
    # gunicorn names its processes when setproctitle is installed: `gunicorn: worker [...]`
    workers = [
        c for c in _children(master)
        if _cmdline(c) == own or _cmdline(c).startswith(b"gunicorn: worker")
    ]
    beside = [p for c in _children(master) if c not in workers for p in _tree(c)]
    return [master, *workers], beside


def _postgres_pids(database: str) -> list[int]:
    """The benchmark database's backends and PostgreSQL's own background processes."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if not cmd.startswith("postgres:"):
            continue
        is_backend = "(" in cmd or "[local]" in cmd
        if database in cmd or not is_backend:
            found.append(int(entry))
    return found


@dataclass
class CpuSnapshot:
    machine_busy: float
    server: dict[int, float]
    beside: dict[int, float]
    postgres: dict[int, float]


def _snapshot(server_pid: int, database: str) -> CpuSnapshot:
    busy, _ = _machine_busy()
    gunicorn, beside = server_processes(server_pid)
    return CpuSnapshot(
        busy,
        {p: _proc_cpu(p) for p in gunicorn},
        {p: _proc_cpu(p) for p in beside},
        {p: _proc_cpu(p) for p in _postgres_pids(database)},
    )


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(p, 0.0) for p, v in after.items())


# ---- one measurement ----------------------------------------------------------------------------


@dataclass
class Measurement:
    target: str
    seconds: float
    latencies_ms: list[float]
    ok_window: int
    errors_window: int
    ok_total: int
    errors_total: int
    unknown_total: int
    closed_share: float  # of all responses, those that closed their connection
    samples: list[str]
    steps: dict[str | None, str]  # case id -> its step after the run
    cpu: dict[str, float]  # cores in use on average, by whom (see measure)

    @property
    def rps(self) -> float:
        return self.ok_window / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    target: str,
    port: int,
    jobs: list[Job],
    procs: int,
    warmup: float,
    seconds: float,
    server_pid: int,
    database: str,
) -> Measurement:
    """Drive `port` with one client per job for warm-up + seconds; the window is measured."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    groups = [jobs[i::procs] for i in range(procs)]
    groups = [g for g in groups if g]
    start = time.monotonic() + 0.5 + 0.05 * len(groups)
    window = start + warmup
    end = window + seconds
    children = [
        ctx.Process(target=_client_process, args=(port, g, start, window, end, queue))
        for g in groups
    ]
    for child in children:
        child.start()
    _sleep_until(window)
    before = _snapshot(server_pid, database)
    _sleep_until(end)
    after = _snapshot(server_pid, database)
    gathered = [queue.get(timeout=seconds + 60) for _ in children]
    for child in children:
        child.join(timeout=30)
    client_cpu = sum(cpu for cpu, _ in gathered)
    results: list[ThreadResult] = [r for _, rs in gathered for r in rs]
    server_cpu = _spent(before.server, after.server)
    beside_cpu = _spent(before.beside, after.beside)
    pg_cpu = _spent(before.postgres, after.postgres)
    busy = after.machine_busy - before.machine_busy
    other = max(0.0, busy - client_cpu - server_cpu - beside_cpu - pg_cpu)
    cpu = {
        "client": client_cpu / seconds,
        "server": server_cpu / seconds,
        "beside": beside_cpu / seconds,
        "postgres": pg_cpu / seconds,
        "other": other / seconds,
        "machine": busy / seconds,
    }
    return Measurement(
        target=target,
        seconds=seconds,
        latencies_ms=[x for r in results for x in r.latencies_ms],
        ok_window=sum(r.ok_window for r in results),
        errors_window=sum(r.errors_window for r in results),
        ok_total=sum(r.ok_total for r in results),
        errors_total=sum(r.errors_total for r in results),
        unknown_total=sum(r.unknown_total for r in results),
        closed_share=sum(r.closed for r in results)
        / max(1, sum(r.ok_total + r.errors_total for r in results)),
        samples=[s for r in results for s in r.samples][:3],
        steps={r.case_id: r.step for r in results},
        cpu=cpu,
    )


# ---- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start(
    name: str, argv: list[str], port: int, env: dict[str, str], cwd: Path, health: str
) -> Server:
    log = cwd / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", health)
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(server)
            raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def worker_pids(server: Server) -> list[int]:
    return server_processes(server.process.pid)[0][1:]


# ---- the database -------------------------------------------------------------------------------


def create_database(name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(url: str, clients: int, tmp: Path) -> tuple[list[Job], int]:
    """Migrate, publish the SOP, create users and open their cases; returns the jobs and
    how many audit events that wrote."""
    from engine.service.cases import open_case
    from engine.service.context import Context
    from engine.service.sops import publish_sop
    from engine.service.users import Principal, add_user
    from engine.store.db import make_engine
    from engine.store.migrate import upgrade

    engine = make_engine(url)
    try:
        upgrade(engine)
        ctx = Context(engine)
        sop_file = tmp / f"{SOP_KEY}.yaml"
        sop_file.write_text(SOP_YAML)
        admin = Principal("bench-admin", OPD, frozenset(), admin=True)
        publish_sop(ctx, admin, sop_file.read_bytes())
        jobs = []
        for i in range(clients):
            who, token = add_user(ctx, f"petugas-{i:03d}", OPD, ("petugas",))
            case = open_case(ctx, who, SOP_KEY)
            jobs.append(Job(str(case["id"]), token, str(case["step"])))
    finally:
        engine.dispose()
    return jobs, 1 + 2 * clients  # sop.published, then user.created and case.created each


def verify_chain(url: str) -> tuple[bool, int, int]:
    """(chain verifies, events checked, rows in the table)."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from engine.store.audit import verify
    from engine.store.db import make_engine
    from engine.store.tables import AuditEvent

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            result = verify(session)
            rows = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    finally:
        engine.dispose()
    return result.ok, result.checked, int(rows)


def visit_diagnostics(url: str, case_id: str) -> tuple[int, float]:
    """(step visits of one case, server-side ms of current_visit's query on it)."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        row = conn.execute(
            "SELECT pk, (SELECT count(*) FROM step_visit v WHERE v.case_pk = c.pk) "
            "FROM sop_case c WHERE c.id = %s",
            (case_id,),
        ).fetchone()
        assert row is not None
        pk, visits = row
        times = []
        for _ in range(5):
            plan = conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM step_visit WHERE case_pk = %s "
                "AND left_at IS NULL ORDER BY id DESC LIMIT 1",
                (pk,),
            ).fetchone()
            assert plan is not None
            times.append(float(plan[0][0]["Execution Time"]))
    return int(visits), statistics.median(times)


def service_diagnostics(url: str, job: Job, count: int) -> dict[str, float]:
    """What one request costs below HTTP: `authenticate` and `fire_transition` called
    in-process, one at a time, on one case, with what they send to PostgreSQL counted.
    Updates `job.step`; every call commits one audit event."""
    from sqlalchemy import event

    from engine.service.cases import fire_transition
    from engine.service.context import Context
    from engine.service.users import authenticate
    from engine.store.db import make_engine

    counts = Counter[str]()
    engine = make_engine(url)
    event.listen(engine, "before_cursor_execute", lambda *a: counts.update(["statements"]))
    event.listen(engine, "begin", lambda *a: counts.update(["transactions"]))
    event.listen(engine.pool, "checkout", lambda *a: counts.update(["checkouts"]))
    ctx = Context(engine)
    header = f"Bearer {job.token}"
    try:
        for i in range(count + 20):
            if i == 20:  # the first ones warm the pool and the caches
                counts.clear()
                wall, cpu = time.perf_counter(), time.process_time()
            who = authenticate(ctx, header)
            name = NEXT[job.step]
            job.step = str(fire_transition(ctx, who, job.case_id or "", name)["step"])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        pings = counts["checkouts"] if getattr(engine.pool, "_pre_ping", False) else 0
    finally:
        engine.dispose()
    per = {k: v / count for k, v in counts.items()}
    # each transaction costs a BEGIN and a COMMIT or ROLLBACK; each pre-ping a SELECT
    trips = (counts["statements"] + 2 * counts["transactions"] + pings) / count
    return {"wall_ms": wall / count * 1e3, "cpu_ms": cpu / count * 1e3, "pings": pings / count,
            "round trips": trips, **per}  # fmt: skip


# ---- profile ----------------------------------------------------------------------------------


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_key(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('func')} ({path})"


def _short(frame: str) -> str:
    """`SyncWorker.handle_request (gunicorn/workers/sync.py:140)` -> `handle_request`."""
    return frame.split(" (", 1)[0].rsplit(".", 1)[-1]


STAGES = [
    # (label, frame prefix that marks it; matched against `function (file)` keys)
    ("authenticate: token lookup, its own transaction", "authenticate (engine/service/users.py"),
    ("request validation (flask-openapi3, pydantic)", "_validate_request (flask_openapi3"),
    ("fire_transition (the service command)", "fire_transition (engine/service/cases.py"),
    ("  load_case: SELECT case ⋈ sop_version", "load_case (engine/service/cases.py"),
    ("  SopMachine.fire (transitions)", "SopMachine.fire (engine/domain/machine.py"),
    ("  UnitOfWork.commit: flush, audit append, COMMIT", "UnitOfWork.commit (engine/store/uow.py"),
    ("    audit append: advisory lock, head, INSERT", "append (engine/store/audit.py"),
    ("    Session.flush (UPDATE/INSERT of the ORM rows)", "Session.flush (sqlalchemy/orm"),
    ("  case_view (the response body)", "case_view (engine/service/cases.py"),
    ("UnitOfWork.__exit__: session close, reset", "UnitOfWork.__exit__ (engine/store/uow.py"),
    ("pool checkout, with its pre-ping round trip", "_ConnectionFairy._checkout (sqlalchemy"),
    ("  of which the pre-ping", "DefaultDialect._do_ping_w_event (sqlalchemy"),
    ("with_etag/jsonify: JSON response", "with_etag (api/http.py"),
    ("psycopg: sending and waiting on PostgreSQL", "Connection.wait (psycopg"),
    ("SQLAlchemy compile/execute, excluding psycopg", ""),
]


def profile_summary(raw: Path, top: int = 12) -> list[str]:
    """Shares of a py-spy `--format raw` (collapsed stacks) record, counting only samples
    taken while the worker handled a request: by stage, by project function, by leaf."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    stage: Counter[str] = Counter()
    handling = waiting = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not any(_short(f) == "handle_request" for f in frames):
            waiting += count  # in gunicorn's accept/select loop, between requests
            continue
        handling += count
        for key in set(frames):
            inclusive[key] += count
        own[frames[-1]] += count
        in_flask = any(f.startswith("Flask.__call__ ") for f in frames)
        stage["gunicorn: parse, write, close (outside Flask)"] += 0 if in_flask else count
        for label, prefix in STAGES[:-1]:
            if any(f.startswith(prefix) for f in frames):
                stage[label] += count
        sqla = any("sqlalchemy/" in f for f in frames)
        if sqla and not any("psycopg/" in f for f in frames):
            stage[STAGES[-1][0]] += count
    if not handling:
        return [f"({waiting} samples, none inside handle_request)"]
    share = 100.0 / handling
    lines = [
        f"{handling + waiting} samples, {handling} of them handling a request "
        f"({handling * 100 / (handling + waiting):.0f} %); shares are of those.",
        "",
        "| stage (inclusive) | share |",
        "|---|---:|",
    ]
    labels = ["gunicorn: parse, write, close (outside Flask)"] + [lb for lb, _ in STAGES]
    lines += [f"| {lb} | {stage[lb] * share:.1f} % |" for lb in labels]
    lines += ["", "project functions (inclusive):", ""]
    ours = [(k, c) for k, c in inclusive.most_common() if "(engine/" in k or "(api/" in k]
    lines += [f"    {c * share:5.1f} %  {k}" for k, c in ours[:top]]
    lines += ["", "leaf frames (self):", ""]
    lines += [f"    {c * share:5.1f} %  {k}" for k, c in own.most_common(top)]
    return lines


def start_profile(pid: int, seconds: float, raw: Path, idle: bool) -> subprocess.Popen[str] | None:
    """py-spy on one worker: with `idle`, time spent waiting (on PostgreSQL, on the client)
    is sampled too; without, only time the worker was running or runnable."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return None
    argv = [py_spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
    argv += ["-f", "raw", "-o", str(raw)] + (["--idle"] if idle else [])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# ---- report -------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def row(label: str, runs: list[Measurement]) -> str:
    rps = _median([m.rps for m in runs])
    p50 = _median([m.pct(0.50) for m in runs])
    p99 = _median([m.pct(0.99) for m in runs])
    errors = sum(m.errors_window for m in runs)
    each = " / ".join(f"{m.rps:,.0f}" for m in runs)
    return f"| {label} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | {errors} | {each} |"


CPU_KEYS = ("machine", "client", "server", "beside", "postgres", "other")


def cpu_row(label: str, runs: list[Measurement]) -> str:
    def med(key: str) -> float:
        return _median([m.cpu[key] for m in runs])

    def per_request(key: str) -> str:
        ms = _median([m.cpu[key] / m.rps * 1e3 if m.rps else float("nan") for m in runs])
        return f"{ms:.2f}"

    cores = " | ".join(f"{med(k):.2f}" for k in CPU_KEYS)
    per = " / ".join(per_request(k) for k in ("client", "server", "postgres"))
    return f"| {label} | {cores} | {per} |"


def _git_state() -> str:
    """The commit measured, and the files that differ from it (others edit concurrently)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "engine", "api", "sopflow"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return f"{head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


@dataclass
class Bench:
    """One run's state: options, database, servers, clients, and what was committed."""

    args: argparse.Namespace
    database: str
    tmp: Path
    url: str = ""
    jobs: list[Job] = field(default_factory=list)
    setup_events: int = 0
    servers: dict[str, Server] = field(default_factory=dict)
    runs: dict[str, list[Measurement]] = field(default_factory=dict)
    transitions: int = 0  # committed, so one audit event each
    unknown: int = 0

    @property
    def procs(self) -> int:
        return max(1, min(self.args.client_procs, self.args.clients))

    def start_servers(self) -> None:
        args, python = self.args, sys.executable
        env = {**os.environ, "SOPFLOW_DATABASE_URL": self.url}
        port = free_port()
        argv = [python, "-m", "sopflow", "serve", "--port", str(port)]
        argv += ["--workers", str(args.workers)]
        self.servers["sopflow"] = start("sopflow", argv, port, env, self.tmp, "/healthz")
        # the gunicorn settings of sopflow/server.py: one-thread gthread workers, access log
        port = free_port()
        argv = [python, "-m", "gunicorn", "--chdir", str(HERE), "--bind", f"{HOST}:{port}"]
        argv += ["--workers", str(args.workers), "--worker-class", "gthread", "--threads", "1"]
        argv += ["--access-logfile", "-", "--timeout", "30", "bare_flask:app"]
        self.servers["bare"] = start("bare", argv, port, env, self.tmp, "/")

    def stop_servers(self) -> None:
        for server in self.servers.values():
            stop(server)
        self.servers.clear()

    def load(self, target: str, warmup: float, seconds: float) -> Measurement:
        """One measurement; on sopflow, keeps count of what was committed."""
        server = self.servers[target]
        jobs = self.jobs if target == "sopflow" else [Job() for _ in self.jobs]
        pid = server.process.pid
        m = measure(target, server.port, jobs, self.procs, warmup, seconds, pid, self.database)
        if target == "sopflow":
            self.transitions += m.ok_total
            self.unknown += m.unknown_total
            for job in self.jobs:
                job.step = m.steps[job.case_id]
        return m

    def rounds(self) -> None:
        self.runs = {"bare": [], "sopflow": []}
        for r in range(self.args.rounds):
            for target in ("bare", "sopflow"):
                m = self.load(target, self.args.warmup, self.args.seconds)
                self.runs[target].append(m)
                print(
                    f"round {r + 1} {target:8s} {m.rps:8,.0f} req/s  p50 {m.pct(0.5):6.1f} ms"
                    f"  p99 {m.pct(0.99):6.1f} ms  errors {m.errors_total}"
                    + (f"  e.g. {m.samples[0]}" if m.samples else "")
                )

    def profile(self) -> list[str]:
        """py-spy on both sopflow workers under the same load: one sampled on CPU only,
        the other with its waits (they do the same work)."""
        seconds = self.args.profile
        workers = worker_pids(self.servers["sopflow"])
        raws = {idle: self.tmp / f"profile-{'wall' if idle else 'cpu'}.txt" for idle in (0, 1)}
        spies = {
            idle: start_profile(workers[idle % len(workers)], seconds, raws[idle], bool(idle))
            for idle in (0, 1)
        }
        self.load("sopflow", 0.0, seconds + 1.5)
        lines: list[str] = []
        for idle, spy in spies.items():
            if spy is None:
                return ["(no profile: `.venv/bin/pip install py-spy` to get one)"]
            output = spy.communicate()[0]
            if spy.returncode != 0 or not raws[idle].exists():
                lines += [f"(py-spy failed: {output.strip()[-300:]})"]
                continue
            title = "wall time (waits included)" if idle else "on CPU (waits excluded)"
            lines += [f"#### {title}", "", *profile_summary(raws[idle]), ""]
            if self.args.profile_dir:
                self.args.profile_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(raws[idle], self.args.profile_dir / raws[idle].name)
        return lines

    def report(self, profile: list[str], service: dict[str, float]) -> bool:
        args, runs = self.args, self.runs
        ok, checked, rows = verify_chain(self.url)
        expected = self.setup_events + self.transitions
        visits, visit_ms = visit_diagnostics(self.url, self.jobs[0].case_id or "")
        bare_rps = _median([m.rps for m in runs["bare"]])
        sop_rps = _median([m.rps for m in runs["sopflow"]])
        closed = _median([m.closed_share for m in runs["bare"] + runs["sopflow"]])
        cores = os.cpu_count()
        print(
            f"\n### Results (medians of {args.rounds} runs; {args.clients} clients, "
            f"{args.workers} one-thread gthread workers, {cores} cores shared with the clients)\n"
        )
        print("| target | req/s | p50 ms | p99 ms | errors | req/s per run |")
        print("|---|---:|---:|---:|---:|---|")
        print(row("bare Flask JSON endpoint (gunicorn)", runs["bare"]))
        print(row("sopflow POST /api/v1/cases/{id}/transitions", runs["sopflow"]))
        print(f"\nratio transitions/s ÷ bare req/s: {sop_rps / bare_rps:.3f}")
        good = ok and checked == rows == expected and not self.unknown
        print(
            f"audit chain: verify {'passes' if ok else 'FAILS'}; {checked:,} events checked, "
            f"{rows:,} rows, {expected:,} expected ({self.setup_events} from setup + "
            f"{self.transitions:,} transitions committed"
            + (f"; {self.unknown} requests with unknown outcome" if self.unknown else "")
            + f") — {'OK' if good else 'MISMATCH'}"
        )
        print(
            f"connections: the servers closed {100 * closed:.0f} % of them after one response; "
            "the clients reconnect when they do"
        )
        print("\n### Where the CPU went (cores in use on average; medians of the runs)\n")
        print(
            "| target | machine busy | load generator | gunicorn | beside gunicorn | PostgreSQL "
            "| other | CPU ms per request: load generator / gunicorn / PostgreSQL |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(cpu_row("bare Flask", runs["bare"]))
        print(cpu_row("sopflow transition", runs["sopflow"]))
        print(
            f"\n`beside gunicorn`: what the server runs next to it (an embedded Celery worker); "
            f"`other`: anything else on the machine meanwhile. After the runs case 1 has "
            f"{visits:,} step visits; current_visit's query on it takes {visit_ms:.3f} ms in "
            "PostgreSQL."
        )
        if service:
            print(
                "\nBelow HTTP, in-process and one at a time (servers stopped): authenticate + "
                f"fire_transition take {service['wall_ms']:.2f} ms ({service['cpu_ms']:.2f} ms "
                f"CPU) per transition: {service.get('statements', 0):.1f} SQL statements in "
                f"{service.get('transactions', 0):.1f} transactions, "
                f"{service.get('pings', 0):.1f} pool pre-pings, "
                f"{service.get('round trips', 0):.1f} round trips to PostgreSQL."
            )
        if profile:
            print(
                f"\n### Profile of the sopflow workers ({args.profile:g} s of py-spy under "
                "the same load)\n"
            )
            print("\n".join(profile))
        return good and not any(m.errors_total for m in runs["sopflow"])


def headline(bench: Bench, service: dict[str, float], passed: bool) -> dict[str, Any]:
    """The figures `--json` writes: per target, medians of the runs (p99: the median of each
    run's p99, and the p99 of all the runs' requests pooled), and the in-process costs."""

    def figures(runs: list[Measurement]) -> dict[str, Any]:
        pooled = sorted(x for m in runs for x in m.latencies_ms)
        return {
            "rps": _median([m.rps for m in runs]),
            "p50_ms": _median([m.pct(0.50) for m in runs]),
            "p99_ms": _median([m.pct(0.99) for m in runs]),
            "p99_ms_pooled": pooled[min(len(pooled) - 1, int(0.99 * len(pooled)))]
            if pooled
            else float("nan"),
            "errors": sum(m.errors_window for m in runs),
            "rps_each": [m.rps for m in runs],
            "cpu_cores": {k: _median([m.cpu[k] for m in runs]) for k in CPU_KEYS},
            "server_cpu_ms_per_request": _median(
                [m.cpu["server"] / m.rps * 1e3 if m.rps else float("nan") for m in runs]
            ),
        }

    args, runs = bench.args, bench.runs
    bare, sop = figures(runs["bare"]), figures(runs["sopflow"])
    return {
        "clients": args.clients,
        "workers": args.workers,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "bare": bare,
        "sopflow": sop,
        "ratio": sop["rps"] / bare["rps"] if bare["rps"] else float("nan"),
        "inprocess": service,
        "passed": passed,
        "code": _git_state(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=20, help="measured time per run (20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both (2)")
    parser.add_argument("--rounds", type=int, default=3, help="bare+sopflow pairs (3)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per run (2)")
    parser.add_argument("--client-procs", type=int, default=4, help="load generator processes (4)")
    parser.add_argument(
        "--profile", type=float, default=6,
        help="seconds of py-spy on the sopflow workers under load, after the runs (0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--inprocess", type=int, default=150,
        help="transitions called in-process afterwards to count SQL round trips (0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--profile-dir", type=Path, help="keep py-spy's collapsed stacks in this folder"
    )
    parser.add_argument("--json", type=Path, help="also write the headline figures to this file")
    args = parser.parse_args()
    bench = Bench(
        args,
        f"sopflow_bench_{secrets.token_hex(4)}",
        Path(tempfile.mkdtemp(prefix="sopflow-bench-")),
    )
    cores = os.cpu_count()
    print(f"sopflow transition benchmark — {date.today().isoformat()}, {cores} CPU cores")
    print(
        f"clients: {args.clients} in {bench.procs} processes, {args.seconds:g} s measured "
        f"after {args.warmup:g} s warm-up, {args.rounds} rounds alternating bare / sopflow; "
        f"gunicorn {args.workers} one-thread gthread workers each"
    )
    print(f"code: {_git_state()}")
    print(
        f"NOTE: the load generator, both servers and PostgreSQL share this machine's {cores} "
        "cores; see the CPU table for who used them.\n"
    )
    passed = False
    try:
        bench.url = create_database(bench.database)
        t0 = time.monotonic()
        bench.jobs, bench.setup_events = prepare(bench.url, args.clients, bench.tmp)
        print(
            f"database {bench.database}: migrated, SOP published, {len(bench.jobs)} users and "
            f"cases ({time.monotonic() - t0:.1f} s)"
        )
        bench.start_servers()
        ports = {name: server.port for name, server in bench.servers.items()}
        print(f"servers up: sopflow on :{ports['sopflow']}, bare Flask on :{ports['bare']}\n")
        bench.rounds()
        profile = bench.profile() if args.profile > 0 else []
        bench.stop_servers()
        service: dict[str, float] = {}
        if args.inprocess > 0:
            service = service_diagnostics(bench.url, bench.jobs[0], args.inprocess)
            bench.transitions += args.inprocess + 20
        passed = bench.report(profile, service)
        if args.json:
            args.json.write_text(json.dumps(headline(bench, service, passed), indent=2))
    finally:
        bench.stop_servers()
        try:
            drop_database(bench.database)
        except Exception as e:  # noqa: BLE001 - report, never hide the real failure
            print(f"could not drop database {bench.database}: {e}", file=sys.stderr)
        shutil.rmtree(bench.tmp, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
