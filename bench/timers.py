"""SLA timers on PostgreSQL: sweep cost against pending timers, and escalation lateness
side by side with Celery ETA tasks on the same Redis.

    .venv/bin/python bench/timers.py [--quick] [--profile]

One run, on a fresh PostgreSQL database it creates (and drops at the end):

1. migrates it, publishes tests/sops/second-ladder.yaml (24x7, rungs at 50 %, 100 %,
   200 %, service time 10 s) through the service layer, adds its staff and opens one
   template case the real way; every other case, open step visit and timer is cloned from
   it with set-based SQL (INSERT … SELECT generate_series), with `rung`, `action`,
   `to_role`, `flag` and `key` exactly as `engine.service.clocks.enter` writes them;
2. **sweep cost**: at 10,000 / 100,000 / 1,000,000 pending (not yet due) timers, times
   `engine.service.timers.sweep` in this process when nothing is due and when 1,000 rungs
   on 1,000 open cases are due (medians of several repetitions), and prints the
   `EXPLAIN (ANALYZE, BUFFERS)` of the sweep's claim query at each size;
3. **escalation lateness**: with 100,000 pending timers, 10,000 rungs fall due together at
   an instant T a few seconds ahead; a real `python -m sopflow worker` (worker + beat,
   SOPFLOW_TIMER_INTERVAL=1, a Redis of the bench's own as broker) fires them; reports
   fired_at − due_at, when an observer polling every 50 ms saw them committed, and checks
   each fired exactly once (sla_firing, audit `sla.*` events, no timer left, chain verifies);
4. **the peer**: the same 10,000 "due at T" jobs as Celery ETA tasks (`apply_async(eta=T)`)
   on the same Redis, run by a plain Celery worker (bench/timers_peer.py; Celery's default
   prefork pool, one process per core; `--peer-pool solo` for the pool sopflow's worker
   uses) whose task records `time.time() - eta`.

`--quick` does fewer repetitions and 2,000 jobs instead of 10,000 in 3 and 4. `--profile`
samples the sopflow worker with py-spy (`pip install py-spy`) during 3 and prints where its
time went. Timings drift ±35 % between runs on a small machine: compare within one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script, this file's folder comes first on sys.path, and bench/transitions.py
# would shadow the `transitions` package the engine imports: put the repository there instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get(
    "SOPFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LADDER = ROOT / "tests" / "sops" / "second-ladder.yaml"
OPD = "dinas-detik"
SOP_KEY = "detik"
INTERVAL = 1.0  # SOPFLOW_TIMER_INTERVAL of the worker in part 3
POLL = 0.05  # the observer's polling period
PEND_CASES = 8  # the real cases the pending timers point at
FAR = timedelta(days=2)  # pending timers fall due from now + FAR on, 2.5 s apart


def log(message: str = "") -> None:
    print(message, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-quantile by nearest rank (q=1: the maximum)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


# ---- processes and services ---------------------------------------------------------------


class Child:
    """A child process in its own session, so a stop reaches everything it started."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_redis(tmp: Path) -> tuple[Child, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no"]  # fmt: skip
    child = Child(argv, dict(os.environ), tmp, tmp / "redis.log")
    import redis

    client = redis.Redis(port=port)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(ready, 10, "redis-server to answer")
    client.close()
    return child, port


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


# ---- the data: a real SOP, a real template case, set-based clones of it ---------------------


@dataclass
class Rows:
    """A batch of cloned cases, each with an open visit and one timer."""

    first_pk: int
    last_pk: int
    count: int


@dataclass
class Site:
    url: str
    conn: Any  # psycopg connection, autocommit
    ctx: Any  # engine.service.context.Context on the real clock
    template_pk: int
    template_visit: int
    kinds: list[tuple[int, str, str | None, str | None]]  # (rung, action, to_role, flag)
    ladder: list[tuple[int, str, str | None, str | None]]
    pend_cases: list[int] = field(default_factory=list)
    pend_visits: list[int] = field(default_factory=list)
    batches: int = 0
    pending_serial: int = 0

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]


def columns(conn: Any, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def prepare(url: str) -> Site:
    """Migrate, publish the second-ladder SOP, add its staff, open one template case."""
    import psycopg

    from engine.domain.validator import load_sop
    from engine.service.cases import open_case
    from engine.service.clocks import SERVICE_RUNG
    from engine.service.context import Context
    from engine.service.sops import publish_sop
    from engine.service.users import add_user
    from engine.store.db import make_engine
    from engine.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    ctx = Context(engine)
    admin, _ = add_user(ctx, "admin", opd=OPD, admin=True)
    publish_sop(ctx, admin, LADDER.read_bytes())
    loket, _ = add_user(ctx, "loket", opd=OPD, roles=("loket",))
    add_user(ctx, "kasi", opd=OPD, roles=("kasi",))
    add_user(ctx, "kadis", opd=OPD, roles=("kadis",))
    # the template: a case opened by the service layer, its clock ten years ahead so that
    # its own four timers are pending ones
    later = datetime.now(UTC) + timedelta(days=3650)
    template = open_case(Context(engine, lambda: later), loket, SOP_KEY)
    sop = load_sop(LADDER.read_bytes(), str(LADDER))
    step = sop.step(sop.initial.id)
    ladder = [(i, r.action, r.to, r.flag) for i, r in enumerate(sop.ladder(step))]
    conn = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
    pk = conn.execute("SELECT pk FROM sop_case WHERE id = %s", (template["id"],)).fetchone()[0]
    visit = conn.execute(
        "SELECT id FROM step_visit WHERE case_pk = %s AND left_at IS NULL", (pk,)
    ).fetchone()[0]
    kinds = [*ladder, (SERVICE_RUNG, "service", None, None)]
    site = Site(url, conn, ctx, pk, visit, kinds, ladder)
    far = datetime.now(UTC) + FAR
    pend = clone_cases(site, PEND_CASES, far - timedelta(days=1), timers=False)
    site.pend_cases = [r[0] for r in conn.execute(
        "SELECT pk FROM sop_case WHERE pk BETWEEN %s AND %s ORDER BY pk",
        (pend.first_pk, pend.last_pk)).fetchall()]  # fmt: skip
    site.pend_visits = [r[0] for r in conn.execute(
        "SELECT id FROM step_visit WHERE case_pk = ANY(%s) ORDER BY case_pk",
        (site.pend_cases,)).fetchall()]  # fmt: skip
    return site


def clone_cases(site: Site, n: int, due: datetime, timers: bool = True) -> Rows:
    """`n` new open cases cloned from the template, each in its first step with an open
    visit and (with `timers`) one timer due at `due`: rung `pk % 4` of [warn, escalate
    kasi, escalate kadis + inspectorate flag, service time], keyed as clocks.enter keys it."""
    conn = site.conn
    site.batches += 1
    tag = f"bench{site.batches:04d}"
    entered = due - timedelta(seconds=8)
    case_cols = [c for c in columns(conn, "sop_case") if c != "pk"]
    case_over = {
        "id": "%(tag)s || lpad(g::text, 8, '0')",
        "tracking_code": "upper(%(tag)s) || '-' || lpad(g::text, 8, '0')",
        "step_entered_at": "%(entered)s",
        "created_at": "%(entered)s",
        "step_due_at": "%(entered)s + interval '4 seconds'",
        "service_due_at": "%(entered)s + interval '10 seconds'",
        "version": "1",
    }
    visit_cols = [c for c in columns(conn, "step_visit") if c != "id"]
    visit_over = {
        "case_pk": "c.pk",
        "entered_at": "%(entered)s",
        "due_at": "%(entered)s + interval '4 seconds'",
        "left_at": "NULL",
        "left_by": "NULL",
        "left_via": "NULL",
    }
    case_select = ", ".join(case_over.get(c, f"t.{c}") for c in case_cols)
    visit_select = ", ".join(visit_over.get(c, f"t.{c}") for c in visit_cols)
    cases_sql = f"""
        INSERT INTO sop_case ({", ".join(case_cols)})
        SELECT {case_select} FROM sop_case t, generate_series(1, %(n)s) g
        WHERE t.pk = %(template)s ORDER BY g
        RETURNING pk"""
    visits_sql = f"""
        INSERT INTO step_visit ({", ".join(visit_cols)})
        SELECT {visit_select} FROM c, step_visit t WHERE t.id = %(template_visit)s
        ORDER BY c.pk
        RETURNING id, case_pk"""
    timers_sql = """
        INSERT INTO sla_timer (due_at, case_pk, visit_id, rung, action, to_role, flag, key)
        SELECT %(due)s, v.case_pk,
               CASE WHEN r.rung >= 0 THEN v.id END, r.rung, r.action, r.to_role, r.flag,
               CASE WHEN r.rung >= 0 THEN 'v' || v.id || ':r' || r.rung
                    ELSE 'c' || v.case_pk || ':service' END
        FROM v JOIN unnest(%(rungs)s::int[], %(actions)s::text[], %(tos)s::text[],
                           %(flags)s::text[]) WITH ORDINALITY AS r(rung, action, to_role, flag, n)
             ON r.n = 1 + v.case_pk %% %(nkinds)s"""
    params = {
        "tag": tag,
        "n": n,
        "entered": entered,
        "due": due,
        "template": site.template_pk,
        "template_visit": site.template_visit,
        "rungs": [k[0] for k in site.kinds],
        "actions": [k[1] for k in site.kinds],
        "tos": [k[2] for k in site.kinds],
        "flags": [k[3] for k in site.kinds],
        "nkinds": len(site.kinds),
    }
    tail = timers_sql if timers else "SELECT count(*) FROM v"
    sql = f"WITH c AS ({cases_sql}), v AS ({visits_sql}) {tail}"
    with conn.transaction():
        conn.execute(sql, params)
        first, last, count = conn.execute(
            "SELECT min(pk), max(pk), count(*) FROM sop_case WHERE id LIKE %s",
            (tag + "%",),
        ).fetchone()
    return Rows(first, last, count)


PENDING_SQL = """
    INSERT INTO sla_timer (due_at, case_pk, visit_id, rung, action, to_role, flag, key)
    SELECT %(far)s + g * interval '2.5 seconds', p.case_pk, p.visit_id,
           r.rung, r.action, r.to_role, r.flag,
           'v' || p.visit_id || ':r' || r.rung || ':' || g
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
    JOIN unnest(%(cases)s::int[], %(visits)s::int[]) WITH ORDINALITY AS p(case_pk, visit_id, n)
         ON p.n = 1 + g %% %(np)s
    JOIN unnest(%(rungs)s::int[], %(actions)s::text[], %(tos)s::text[], %(flags)s::text[])
         WITH ORDINALITY AS r(rung, action, to_role, flag, n)
         ON r.n = 1 + g %% %(nr)s"""


def add_pending(site: Site, n: int) -> None:
    """`n` more pending timers, due from now + FAR on, 2.5 s apart, on the pending cases'
    visits, rungs of the ladder in turn (keys made unique by a serial suffix)."""
    if n <= 0:
        return
    params = {
        "far": datetime.now(UTC) + FAR,
        "lo": site.pending_serial + 1,
        "hi": site.pending_serial + n,
        "cases": site.pend_cases,
        "visits": site.pend_visits,
        "np": len(site.pend_cases),
        "rungs": [k[0] for k in site.ladder],
        "actions": [k[1] for k in site.ladder],
        "tos": [k[2] for k in site.ladder],
        "flags": [k[3] for k in site.ladder],
        "nr": len(site.ladder),
    }
    site.pending_serial += n
    with site.conn.transaction():
        # the rows point at real cases and visits by construction: skip the per-row foreign
        # key triggers for this bulk load only (it halves its time); the sweep runs with them
        site.conn.execute("SET LOCAL session_replication_role = replica")
        site.conn.execute(PENDING_SQL, params)


def counts(site: Site) -> tuple[int, int]:
    """(pending, due) timers now."""
    row = site.conn.execute(
        "SELECT count(*) FILTER (WHERE due_at > now()), count(*) FILTER (WHERE due_at <= now())"
        " FROM sla_timer"
    ).fetchone()
    return int(row[0]), int(row[1])


def vacuum_analyze(site: Site) -> None:
    # autovacuum may be off (it is on the machine this was written on): do what it would do
    for table in ("sla_timer", "sop_case", "step_visit", "sla_firing", "audit_event"):
        site.conn.execute(f"VACUUM (ANALYZE) {table}")


def claim_sql(site: Site) -> tuple[str, dict[str, Any]]:
    """The sweep's claim query exactly as timers._sweep_batch runs it, compiled."""
    from engine.service.timers import _CLAIM, BATCH

    query = _CLAIM.with_for_update(skip_locked=True)
    compiled = query.compile(dialect=site.ctx.engine.dialect)
    params = compiled.construct_params({"now": datetime.now(UTC), "batch": BATCH})
    return str(compiled), dict(params)


def explain_claim(site: Site) -> list[str]:
    sql, params = claim_sql(site)
    with site.conn.transaction():
        # FOR UPDATE locks what it finds; the transaction ends at once and changes nothing
        rows = site.conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
    return [r[0] for r in rows]


# ---- part 1: sweep cost against pending timers --------------------------------------------


@dataclass
class SweepCost:
    """One database at one pending count, and what its sweeps cost."""

    site: Site
    pending: int = 0
    build_s: float = 0.0
    empty_ms: list[float] = field(default_factory=list)
    fire_ms: list[float] = field(default_factory=list)
    fire_cpu_ms: list[float] = field(default_factory=list)  # CPU of this (sweeping) process
    plan: list[str] = field(default_factory=list)  # nothing due
    plan_due: list[str] = field(default_factory=list)  # with the rungs due
    plan_fresh: list[str] = field(default_factory=list)  # after the bulk load, before ANALYZE


def build_pending(cost: SweepCost, pending: int) -> None:
    """Top the database up to `pending` timers not yet due; then what autovacuum would do."""
    site = cost.site
    have, due_now = counts(site)
    assert due_now == 0, f"{due_now} timers due before the measurement"
    t0 = time.perf_counter()
    add_pending(site, pending - have)
    cost.plan_fresh = explain_claim(site)
    vacuum_analyze(site)
    # write the bulk load's dirty pages out now, not during the measurements
    site.conn.execute("CHECKPOINT")
    cost.build_s = time.perf_counter() - t0
    cost.pending, _ = counts(site)
    log(f"  {cost.pending:,} pending timers (built, VACUUM ANALYZEd, CHECKPOINTed in "
        f"{cost.build_s:.1f} s)")  # fmt: skip


def measure_round(cost: SweepCost, empties: int, due: int) -> None:
    """`empties` sweeps with nothing due, then one that fires `due` rungs on `due` cases."""
    from engine.service import timers

    site = cost.site
    if not cost.plan:
        timers.sweep(site.ctx)  # warm: connection pool, parsed SOP
        cost.plan = explain_claim(site)
    for _ in range(empties):
        t = time.perf_counter()
        result = timers.sweep(site.ctx)
        cost.empty_ms.append((time.perf_counter() - t) * 1000)
        assert result.fired == 0
    rows = clone_cases(site, due, datetime.now(UTC) - timedelta(seconds=1))
    assert rows.count == due
    if not cost.plan_due:
        cost.plan_due = explain_claim(site)
    t, c = time.perf_counter(), time.process_time()
    result = timers.sweep(site.ctx)
    cost.fire_ms.append((time.perf_counter() - t) * 1000)
    cost.fire_cpu_ms.append((time.process_time() - c) * 1000)
    left = site.scalar("SELECT count(*) FROM sla_timer WHERE due_at <= now()")
    assert result.fired == due and left == 0, (result.fired, left)


def sweep_costs(costs: list[SweepCost], rounds: int, empties: int, due: int) -> None:
    """Rounds over the databases, in a rotating order, so that the machine's drift falls on
    every size alike."""
    for r in range(rounds):
        order = costs[r % len(costs) :] + costs[: r % len(costs)]
        for cost in order:
            measure_round(cost, empties, due)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{c.pending // 1000:,}k: {c.fire_ms[-1]:,.0f} ms" for c in costs))  # fmt: skip
    for c in costs:
        log(
            f"  {c.pending:,} pending: empty sweep {median(c.empty_ms):.2f} ms "
            f"({min(c.empty_ms):.2f}–{max(c.empty_ms):.2f}); {due:,} due: "
            f"{median(c.fire_ms):,.0f} ms ({min(c.fire_ms):,.0f}–{max(c.fire_ms):,.0f}), "
            f"{median(c.fire_cpu_ms):,.0f} ms CPU here; claim: {plan_summary(c.plan)}"
        )


def plan_summary(plan: list[str]) -> str:
    nodes = [ln.strip().lstrip("-> ").split("  (")[0] for ln in plan if "(cost=" in ln]
    timing = [ln.strip() for ln in plan if ln.strip().startswith("Execution Time")]
    return " → ".join(nodes) + (f"; {timing[0]}" if timing else "")


# ---- part 2: escalation lateness with a real worker ---------------------------------------


@dataclass
class Lateness:
    jobs: int
    lateness: list[float]  # seconds
    seen: list[float]  # seconds from T until an observer saw each committed
    last_fired: float
    first_fired: float
    checks: list[tuple[str, bool, str]]
    sweeps: list[str]
    profile: list[str]
    setup_lead: float
    pending: int
    cpu: tuple[float, float, float]  # wall, worker CPU, PostgreSQL backends' CPU (seconds)


def worker_env(site: Site, redis_url: str, data: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "SOPFLOW_DATABASE_URL": site.url,
        "SOPFLOW_BROKER_URL": redis_url,
        "SOPFLOW_TIMER_INTERVAL": str(INTERVAL),
        "SOPFLOW_DATA_DIR": str(data),
    }
    return env


def swept_since(site: Site, since: datetime) -> bool:
    at = site.scalar("SELECT swept_at FROM sweep_state WHERE id = 1")
    return at is not None and at > since


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process so far (0 when it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_snapshot(site: Site, worker: int) -> tuple[float, dict[int, float]]:
    """Wall time, and CPU seconds of the worker and of the database's PostgreSQL backends."""
    backends = [r[0] for r in site.conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()").fetchall()]  # fmt: skip
    pids = [worker, *backends]
    return time.time(), {pid: cpu_seconds(pid) for pid in pids}


def cpu_spent(
    before: tuple[float, dict[int, float]], after: tuple[float, dict[int, float]]
) -> tuple[float, float, float]:
    (t0, c0), (t1, c1) = before, after
    worker = next(iter(c0))
    spent = {pid: c1[pid] - c0.get(pid, 0.0) for pid in c1}
    backends = sum(v for pid, v in spent.items() if pid != worker)
    return t1 - t0, spent.get(worker, 0.0), backends


FIRED_SQL = "SELECT count(*) FROM sla_firing WHERE case_pk BETWEEN %s AND %s"
SPAN_SQL = """
    SELECT extract(epoch FROM min(fired_at) - %(t)s), extract(epoch FROM max(fired_at) - %(t)s)
    FROM sla_firing WHERE case_pk BETWEEN %(lo)s AND %(hi)s"""


def sopflow_lateness(site: Site, redis_url: str, tmp: Path, jobs: int, profile: bool) -> Lateness:
    from engine.store.audit import verify

    started = datetime.now(UTC)
    worker = Child(
        [sys.executable, "-m", "sopflow", "worker", "--loglevel", "INFO"],
        worker_env(site, redis_url, tmp / "sopflow-data"),
        tmp,
        tmp / "sopflow-worker.log",
    )
    spy: subprocess.Popen[str] | None = None
    try:
        try:
            wait_until(lambda: swept_since(site, started), 60, "the worker's first sweep")
        except RuntimeError:
            log(worker.tail())
            raise
        time.sleep(2 * INTERVAL)  # a few sweeps on 100,000 pending timers before T
        pending, _ = counts(site)
        lead = 4.0
        due = datetime.now(UTC) + timedelta(seconds=lead)
        rows = clone_cases(site, jobs, due)
        setup_lead = (due - datetime.now(UTC)).total_seconds()
        if setup_lead <= 0.5:
            raise RuntimeError(
                f"the {jobs} due rungs were committed only {setup_lead:.2f} s before T"
            )
        log(f"  {jobs:,} rungs on {rows.count:,} cases committed {setup_lead:.2f} s before T")
        raw = tmp / "sopflow-worker.pyspy"
        if profile:
            spy = start_profile(worker.pid, raw)
        t_due = due.timestamp()
        lo, hi = rows.first_pk, rows.last_pk
        cpu_before = cpu_snapshot(site, worker.pid)
        seen: list[float] = []
        last = 0
        deadline = time.time() + 600
        while last < jobs and time.time() < deadline:
            now_count = int(site.scalar(FIRED_SQL, (lo, hi)))
            if now_count > last:
                seen += [time.time() - t_due] * (now_count - last)
                last = now_count
            time.sleep(POLL)
        cpu = cpu_spent(cpu_before, cpu_snapshot(site, worker.pid))
        profile_lines: list[str] = []
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
            profile_lines = profile_summary(raw) if raw.exists() else ["(py-spy wrote nothing)"]
        time.sleep(2 * INTERVAL + 0.5)  # long enough for a second firing to show, were there one
        late = [
            float(r[0])
            for r in site.conn.execute(
                "SELECT extract(epoch FROM fired_at - due_at) FROM sla_firing "
                "WHERE case_pk BETWEEN %s AND %s",
                (lo, hi),
            ).fetchall()
        ]
        fired_span = site.conn.execute(SPAN_SQL, {"t": due, "lo": lo, "hi": hi}).fetchone()
        checks = once_checks(site, lo, hi, jobs)
        with site.ctx.uow() as uow:
            chain = verify(uow.session)
        checks.append(("audit hash chain verifies", chain.ok, f"{chain.checked:,} events"))
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        worker.stop()
    sweeps = sweep_log(worker.log_path)
    return Lateness(
        jobs, late, seen, float(fired_span[1] or 0), float(fired_span[0] or 0), checks, sweeps,
        profile_lines, setup_lead, pending, cpu,
    )  # fmt: skip


def once_checks(site: Site, lo: int, hi: int, jobs: int) -> list[tuple[str, bool, str]]:
    q = site.scalar
    firings = int(q("SELECT count(*) FROM sla_firing WHERE case_pk BETWEEN %s AND %s", (lo, hi)))
    keys = int(q("SELECT count(DISTINCT key) FROM sla_firing WHERE case_pk BETWEEN %s AND %s",
                 (lo, hi)))  # fmt: skip
    left = int(q("SELECT count(*) FROM sla_timer WHERE case_pk BETWEEN %s AND %s", (lo, hi)))
    per_case = site.conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE n = 1), coalesce(sum(n), 0)
           FROM (SELECT e.case_id, count(*) AS n FROM audit_event e
                 JOIN sop_case c ON c.id = e.case_id
                 WHERE c.pk BETWEEN %s AND %s AND e.type LIKE 'sla.%%'
                 GROUP BY e.case_id) per""",
        (lo, hi),
    ).fetchone()
    cases_with, cases_once, events = (int(x) for x in per_case)
    return [
        ("sla_firing rows for the jobs' keys", firings == jobs and keys == jobs,
         f"{firings:,} rows, {keys:,} distinct keys, {jobs:,} expected"),
        ("audit sla.* events: exactly one per job's case", cases_once == jobs and events == jobs,
         f"{events:,} events on {cases_with:,} cases, {cases_once:,} with exactly one"),
        ("no timer of the jobs left", left == 0, f"{left} left"),
    ]  # fmt: skip


_SWEEP_DONE = re.compile(r"Task sopflow\.sweep\[[^\]]+\] succeeded in ([0-9.]+)s: (\d+)")


def sweep_log(path: Path) -> list[str]:
    """The sweeps that fired something, from the worker's log: seconds and rungs."""
    out = []
    for m in _SWEEP_DONE.finditer(path.read_text(errors="replace")):
        if int(m.group(2)):
            out.append(f"{float(m.group(1)):.2f} s/{int(m.group(2)):,}")
    return out


# ---- py-spy ---------------------------------------------------------------------------------


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _frame_key(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('func')} ({path})"


def start_profile(pid: int, raw: Path) -> subprocess.Popen[str] | None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        log("  (no profile: `.venv/bin/pip install py-spy` to get one)")
        return None
    argv = [
        py_spy,
        "record",
        "-p",
        str(pid),
        "-r",
        "100",
        "--idle",
        "--nonblocking",
        "-f",
        "raw",
        "-o",
        str(raw),
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _has(frames: list[str], *prefixes: str) -> bool:
    return all(any(f.startswith(p) for f in frames) for p in prefixes)


TIMERS_PY = "(engine/service/timers.py"
FLUSH = "Session.flush (sqlalchemy/orm"
# (label, test on the stack's frames and the line _sweep_batch is at)
STAGES: list[tuple[str, Callable[[list[str], str], bool]]] = [
    ("claim: SELECT … FOR UPDATE SKIP LOCKED", lambda f, ln: ln in _lines_of("claim")),
    ("_cases: cases ⋈ sop_version FOR UPDATE", lambda f, ln: _has(f, f"_cases {TIMERS_PY}")),
    ("_claim_firing: one INSERT sla_firing per rung", lambda f, ln: _has(f, "_claim_firing (")),
    (
        "  of which the autoflush it triggers (the previous rung's UPDATE case, INSERT "
        "notification)",
        lambda f, ln: _has(f, "_claim_firing (", FLUSH),
    ),
    ("_apply: the rung's effect (Python)", lambda f, ln: _has(f, f"_apply {TIMERS_PY}")),
    (
        "UnitOfWork.commit: flush, audit append, COMMIT",
        lambda f, ln: _has(f, "UnitOfWork.commit (engine/store/uow.py"),
    ),
    ("DELETE sla_timer", lambda f, ln: ln in _lines_of("delete")),
    (
        "(any stage) inside psycopg's Connection.wait: round trips, reading results",
        lambda f, ln: _has(f, "Connection.wait (psycopg"),
    ),
]


def profile_summary(raw: Path, top: int = 12) -> list[str]:
    """Shares of the samples taken inside a sweep that fired something."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    stage: Counter[str] = Counter()
    in_sweep = total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        raw_frames = stack.split(";")
        frames = [_frame_key(f) for f in raw_frames]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not any(f.startswith("_sweep_batch (engine/service/timers.py") for f in frames):
            continue
        in_sweep += count
        for key in set(frames):
            inclusive[key] += count
        own[frames[-1]] += count
        batch_at = next(i for i, f in enumerate(raw_frames) if f.startswith("_sweep_batch ("))
        line_no = raw_frames[batch_at].rsplit(":", 1)[-1].rstrip(")")
        for label, test in STAGES:
            if test(frames, line_no):
                stage[label] += count
    if not in_sweep:
        return [f"({total} samples, none inside a sweep batch)"]
    share = 100.0 / in_sweep
    lines = [
        f"py-spy --idle at 100 Hz on the sopflow worker: {in_sweep} of {total} samples inside "
        "_sweep_batch; shares are of those (wall time, waiting included).",
        "",
        "| stage (inclusive) | share |",
        "|---|---:|",
    ]
    lines += [f"| {lb} | {stage[lb] * share:.1f} % |" for lb, _ in STAGES]
    lines += ["", "project functions (inclusive):"]
    ours = [(k, c) for k, c in inclusive.most_common() if "(engine/" in k]
    lines += [f"    {c * share:5.1f} %  {k}" for k, c in ours[:top]]
    lines += ["", "leaf frames (self):"]
    lines += [f"    {c * share:5.1f} %  {k}" for k, c in own.most_common(top)]
    return lines


@functools.cache
def _lines_of(what: str) -> frozenset[str]:
    """Line numbers in timers._sweep_batch of the claim's execute or the DELETE."""
    import inspect

    from engine.service import timers

    source, start = inspect.getsourcelines(timers._sweep_batch)
    found = set()
    for offset, text in enumerate(source):
        if what == "claim" and "session.execute(claim)" in text:
            found.add(str(start + offset))
        if what == "delete" and "delete(SlaTimer)" in text:
            found.add(str(start + offset))
    return frozenset(found)


# ---- part 3: the peer, Celery ETA tasks -------------------------------------------------------


@dataclass
class PeerLateness:
    jobs: int
    lateness: list[float]
    runs: int
    distinct: int
    publish_s: float
    lead: float
    fetched: float  # when the worker had fetched every task, relative to T
    pool: str


def publish_cost(peer: Any, client: Any, n: int = 200) -> float:
    """Seconds to send one ETA task, measured on a queue no worker reads (then dropped)."""
    eta_at = datetime.now(UTC) + timedelta(hours=1)
    t0 = time.perf_counter()
    with peer.app.producer_or_acquire() as producer:
        for key in range(n):
            peer.due.apply_async((key, 0.0), eta=eta_at, producer=producer, queue="bench_idle")
    per_task = (time.perf_counter() - t0) / n
    client.delete("bench_idle")
    return per_task


def celery_eta_lateness(
    redis_port: int, tmp: Path, jobs: int, pool: list[str] | None = None
) -> PeerLateness:
    import redis

    broker = f"redis://127.0.0.1:{redis_port}/1"
    os.environ["BENCH_TIMERS_PEER_BROKER"] = broker
    from bench import timers_peer

    timers_peer.app.conf.broker_url = broker
    client = redis.Redis.from_url(broker)
    client.delete(timers_peer.RESULTS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_TIMERS_PEER_BROKER": broker}
    argv = [sys.executable, "-m", "celery", "-A", "bench.timers_peer", "worker",
            *(pool or ["--pool", "solo"]), "--loglevel", "WARNING", "--without-gossip",
            "--without-mingle", "--without-heartbeat"]  # fmt: skip
    # publish first and start the worker after: a worker fetching ETA tasks while they are
    # sent slows the sending down (two cores) and makes T hard to pick ahead
    per_task = publish_cost(timers_peer, client)
    eta = time.time() + 2.0 * jobs * per_task + 4.0 + jobs * 0.001
    eta_at = datetime.fromtimestamp(eta, UTC)
    t0 = time.perf_counter()
    with timers_peer.app.producer_or_acquire() as producer:
        for key in range(jobs):
            timers_peer.due.apply_async((key, eta), eta=eta_at, producer=producer)
    publish = time.perf_counter() - t0
    lead = eta - time.time()
    log(f"  {jobs:,} ETA tasks published in {publish:.1f} s, {lead:.2f} s before T")
    worker = Child(argv, env, ROOT, tmp / "peer-worker.log")
    try:
        try:
            wait_until(
                lambda: client.llen(timers_peer.QUEUE) == 0 or worker.popen.poll() is not None,
                max(60.0, eta - time.time() + 60),
                "the peer worker to fetch the ETA tasks",
            )
            if worker.popen.poll() is not None:
                raise RuntimeError("the peer worker exited")
        except RuntimeError:
            log(worker.tail())
            raise
        fetched = time.time() - eta
        log(f"  the worker held them all at T{fetched:+.2f} s")
        wait_until(lambda: client.llen(timers_peer.RESULTS) >= jobs, 900, "the ETA tasks", 0.1)
        time.sleep(2 * INTERVAL)
        raw = [x.decode().split() for x in client.lrange(timers_peer.RESULTS, 0, -1)]
    finally:
        worker.stop()
        client.close()
    late = [float(v) for _k, v in raw]
    distinct = len({k for k, _ in raw})
    pool_text = " ".join(pool or ["--pool", "solo"])
    return PeerLateness(jobs, late, len(raw), distinct, publish, lead, fetched, pool_text)


# ---- the report -----------------------------------------------------------------------------


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def round_trip(site: Site, n: int = 500) -> str:
    """`SELECT 1` round trips from this process: what one statement costs on this machine now."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        site.conn.execute("SELECT 1").fetchone()
        times.append((time.perf_counter() - t) * 1000)
    return f"p50 {pct(times, 0.5):.3f} ms, p99 {pct(times, 0.99):.2f} ms"


def versions(site: Site) -> str:
    import celery
    import kombu

    pg = site.scalar("SHOW server_version")
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    redis_v = re.search(r"v=([\d.]+)", out)
    return (
        f"PostgreSQL {pg}, Redis {redis_v.group(1) if redis_v else '?'}, "
        f"Celery {celery.__version__}, kombu {kombu.__version__}, "
        f"Python {platform.python_version()}"
    )


def report(
    costs: list[SweepCost], due: int, late: Lateness, peer: PeerLateness, header: list[str]
) -> None:
    log()
    log("## Results")
    log()
    for line in header:
        log(line)
    log()
    log(f"### Sweep cost against pending timers (engine.service.timers.sweep, {due:,} due)")
    log()
    log(f"| pending timers | empty sweep, ms | sweep firing {due:,}, ms | ms per fired rung "
        "| CPU ms per rung (sweeping process) | claim query (EXPLAIN ANALYZE), ms |")  # fmt: skip
    log("|---:|---:|---:|---:|---:|---:|")
    for c in costs:
        log(
            f"| {c.pending:,} | {median(c.empty_ms):.2f} | {median(c.fire_ms):,.0f} | "
            f"{median(c.fire_ms) / due:.2f} | {median(c.fire_cpu_ms) / due:.2f} | "
            f"{_exec_ms(c.plan)} |"
        )
    a, b = costs[0], costs[-1]
    ratio = [
        median(b.empty_ms) / median(a.empty_ms),
        median(b.fire_ms) / median(a.fire_ms),
        median(b.fire_cpu_ms) / median(a.fire_cpu_ms),
    ]
    log(
        f"| **ratio {b.pending // 1000:,}k / {a.pending // 1000:,}k** | **{ratio[0]:.2f}** | "
        f"**{ratio[1]:.2f}** | **{ratio[1]:.2f}** | **{ratio[2]:.2f}** | |"
    )
    log()
    log(f"Medians of {len(a.empty_ms)} empty and {len(a.fire_ms)} firing sweeps per size, one "
        "database per size, taken in rounds that rotate over the sizes. Firing sweeps, "
        "min–max ms: " + "; ".join(f"{c.pending // 1000:,}k {min(c.fire_ms):,.0f}–"
                                   f"{max(c.fire_ms):,.0f}" for c in costs) + ".")  # fmt: skip
    log()
    log(f"Claim query at {b.pending:,} pending, nothing due (EXPLAIN (ANALYZE, BUFFERS)):")
    log()
    log("```")
    for line in b.plan:
        log(line)
    log("```")
    log()
    log(f"- with {due:,} due: `{plan_summary(b.plan_due)}`")
    log(f"- right after the bulk load, before VACUUM ANALYZE: `{plan_summary(b.plan_fresh)}`")
    log()
    log(f"### Escalation lateness: {late.jobs:,} rungs due at one instant T, "
        f"{late.pending:,} pending")  # fmt: skip
    log()
    log("| | jobs | p50, s | p99, s | max, s | last done after T, s | p99 ÷ Celery's |")
    log("|---|---:|---:|---:|---:|---:|---:|")
    p99_peer = pct(peer.lateness, 0.99)
    rows = [
        ("sopflow rows + sweep: fired_at − due_at", late.jobs, late.lateness, late.last_fired),
        ("sopflow rows + sweep: commit seen by a 50 ms poller", late.jobs, late.seen,
         max(late.seen) if late.seen else float("nan")),
        (f"Celery ETA task on Redis ({peer.pool}): started − eta", peer.jobs, peer.lateness,
         max(peer.lateness) if peer.lateness else float("nan")),
    ]  # fmt: skip
    for label, jobs, values, last in rows:
        log(
            f"| {label} | {jobs:,} | {pct(values, 0.5):.3f} | {pct(values, 0.99):.3f} | "
            f"{pct(values, 1.0):.3f} | {last:.2f} | {pct(values, 0.99) / p99_peer:.1f} |"
        )
    span = late.last_fired - late.first_fired
    rate = late.jobs / span if span > 0 else float("nan")
    log()
    log(f"sopflow: first batch at T+{late.first_fired:.2f} s, last at T+{late.last_fired:.2f} s: "
        f"{rate:,.0f} rungs/s through one solo worker; sweeps that fired (duration/rungs): "
        + ", ".join(late.sweeps))  # fmt: skip
    wall, worker_cpu, pg_cpu = late.cpu
    log(f"From the commit of the due rungs to the last firing seen ({wall:.1f} s): the worker "
        f"process used {worker_cpu:.1f} s CPU ({100 * worker_cpu / wall:.0f} % of one core), "
        f"PostgreSQL's backends on this database {pg_cpu:.1f} s "
        f"({100 * pg_cpu / wall:.0f} %).")  # fmt: skip
    p99 = pct(late.lateness, 0.99)
    verdict = "met" if p99 < 1 else f"MISSED: p99 {p99:.2f} s, {p99 - 1:.2f} s over ({p99:.1f}×)"
    log(f"target: lateness p99 < 1 s with {late.pending:,} pending timers → {verdict}")
    log()
    log("Exactly once:")
    for label, ok, detail in late.checks:
        log(f"- [{'ok' if ok else 'FAIL'}] sopflow: {label}: {detail}")
    peer_ok = peer.runs == peer.jobs and peer.distinct == peer.jobs
    log(f"- [{'ok' if peer_ok else 'FAIL'}] Celery ETA: {peer.runs:,} runs of "
        f"{peer.distinct:,} distinct tasks, {peer.jobs:,} sent")  # fmt: skip
    log()
    log(f"Celery ETA: {peer.jobs:,} tasks published in {peer.publish_s:.1f} s, "
        f"{peer.lead:.1f} s before T; the worker (started after) had fetched them all at "
        f"T{peer.fetched:+.1f} s. "
        "Note: Redis redelivers an unacknowledged ETA task after the visibility timeout "
        "(1 h by default), so one due later than that runs twice (celery/celery#2599, "
        "kombu#337) — why sopflow keeps SLA timers as rows. Not reproduced here: every ETA "
        "here is seconds ahead.")  # fmt: skip
    if late.profile:
        log()
        log("### Where the sopflow worker's time went during the burst")
        log()
        for line in late.profile:
            log(line)


def headline(
    costs: list[SweepCost], due: int, late: Lateness, peer: PeerLateness
) -> dict[str, Any]:
    """The figures `--json` writes (medians; lateness in seconds)."""
    sizes = {
        str(c.pending): {
            "empty_ms": median(c.empty_ms),
            "fire_ms": median(c.fire_ms),
            "fire_cpu_ms": median(c.fire_cpu_ms),
            "claim_ms": _exec_ms(c.plan),
        }
        for c in costs
    }
    a, b = costs[0], costs[-1]

    def spread(values: list[float]) -> dict[str, float]:
        return {"p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": pct(values, 1.0)}

    span = late.last_fired - late.first_fired
    return {
        "due_per_firing_sweep": due,
        "sweep": sizes,
        "ratio_largest_smallest": {
            "pending": [a.pending, b.pending],
            "empty": median(b.empty_ms) / median(a.empty_ms),
            "fire": median(b.fire_ms) / median(a.fire_ms),
            "fire_cpu": median(b.fire_cpu_ms) / median(a.fire_cpu_ms),
        },
        "lateness": {
            "jobs": late.jobs,
            "pending": late.pending,
            "fired_at": spread(late.lateness),
            "seen": spread(late.seen),
            "first_fired": late.first_fired,
            "last_fired": late.last_fired,
            "rungs_per_s": late.jobs / span if span > 0 else float("nan"),
            "exactly_once": all(ok for _label, ok, _detail in late.checks),
        },
        "peer": {
            "jobs": peer.jobs,
            "pool": peer.pool,
            "started": spread(peer.lateness),
            "exactly_once": peer.runs == peer.jobs and peer.distinct == peer.jobs,
        },
    }


def _exec_ms(plan: list[str]) -> str:
    for line in plan:
        m = re.search(r"Execution Time: ([0-9.]+) ms", line)
        if m:
            return m.group(1)
    return "?"


@contextmanager
def scratch(keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="sopflow-bench-timers-"))
    try:
        yield tmp
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 2,000 jobs")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy on the sopflow worker during the burst")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    parser.add_argument("--json", type=Path, help="also write the headline figures to this file")
    parser.add_argument(
        "--peer-pool",
        default="prefork",
        help="pool of the peer Celery worker (default: Celery's own default, prefork with one "
        "process per core); `solo` is what sopflow's worker uses",
    )
    args = parser.parse_args()
    levels = [10_000, 100_000, 1_000_000]
    due = 1_000
    rounds, empties = (3, 2) if args.quick else (5, 4)
    jobs = 2_000 if args.quick else 10_000
    token = secrets.token_hex(4)
    started = time.monotonic()
    header = [
        f"- command: `.venv/bin/python bench/timers.py{' --quick' if args.quick else ''}"
        f"{' --profile' if args.profile else ''}`",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
    ]
    created: list[str] = []
    costs: list[SweepCost] = []
    with scratch(args.keep) as tmp:
        redis_child: Child | None = None
        try:
            log(f"scratch {tmp}")
            # one database per pending count, measured in rounds that take turns
            for level in levels:
                name = f"sopflow_bench_timers_{token}_{level // 1000}k"
                url = create_database(name)
                created.append(name)
                log(f"database {name}:")
                cost = SweepCost(prepare(url))
                costs.append(cost)
                build_pending(cost, level)
            site = costs[0].site
            header.append(f"- software: {versions(site)}")
            header.append(f"- load average at the start (1/5/15 min): {load_average()}; "
                          f"`SELECT 1` round trip: {round_trip(site)}")  # fmt: skip
            log(f"sweep cost: {rounds} rounds of {empties} empty sweeps and one firing {due:,} "
                "rungs, on each database in turn:")  # fmt: skip
            sweep_costs(costs, rounds, empties, due)
            redis_child, redis_port = start_redis(tmp)
            log(f"redis-server of the bench's own on port {redis_port}")
            middle = next(c for c in costs if c.pending >= 100_000)  # parts 2 and 3 run on it
            log(f"escalation lateness: {jobs:,} rungs due at T, {middle.pending:,} pending, "
                "a real `python -m sopflow worker`:")  # fmt: skip
            late = sopflow_lateness(
                middle.site, f"redis://127.0.0.1:{redis_port}/0", tmp, jobs, args.profile
            )
            log(f"  p50 {pct(late.lateness, 0.5):.3f} s, p99 {pct(late.lateness, 0.99):.3f}"
                f" s, last at T+{late.last_fired:.2f} s")  # fmt: skip
            log(f"the peer: {jobs:,} Celery ETA tasks due at T on the same Redis:")
            pool = ["--pool", args.peer_pool]
            if args.peer_pool == "prefork":
                pool += ["--concurrency", str(os.cpu_count() or 1)]
            peer = celery_eta_lateness(redis_port, tmp, jobs, pool)
            log(f"  p50 {pct(peer.lateness, 0.5):.3f} s, p99 {pct(peer.lateness, 0.99):.3f} s")
            header.append(f"- load average at the end: {load_average()}; `SELECT 1` round "
                          f"trip: {round_trip(site)}; wall time of the run: "
                          f"{time.monotonic() - started:.0f} s")  # fmt: skip
            report(costs, due, late, peer, header)
            if args.json:
                args.json.write_text(json.dumps(headline(costs, due, late, peer), indent=2))
        finally:
            for cost in costs:
                cost.site.conn.close()
                cost.site.ctx.engine.dispose()
            if redis_child is not None:
                redis_child.stop()
            if args.keep:
                log(f"kept databases {', '.join(created)} and {tmp}")
            else:
                for name in created:
                    drop_database(name)


if __name__ == "__main__":
    main()
