"""The inspectorate's reports and the audit chain's verification at scale, on PostgreSQL.

    .venv/bin/python bench/reports.py [--cases 1000000] [--events-per-case 10] [--keep]
    .venv/bin/python bench/reports.py --quick          # 50,000 cases, a fast check

One run:

1. creates a fresh database, migrates it (`engine.store.migrate.upgrade`), and through the
   service layer creates an admin per OPD, publishes every SOP in `workflows/`, creates 20
   officers per OPD (a few of them slow, one who acts after hours) and an inspector;
2. generates a year of history (bench/reports_gen.py): the cases, their step visits and
   payments, and the audit events chained after the setup's own, with a valid hash chain,
   loaded with COPY in batches (the four tables' secondary indexes and foreign keys are
   dropped for the load and re-created exactly as the migration made them), then
   VACUUM ANALYZE; this is setup and is timed apart;
3. measures, through the service functions with an inspector principal, each in a fresh
   process (so its peak RSS is its own), round-robin for `--runs` rounds: `bottlenecks` of
   the busiest SOP over the year and over the last month, `sla_compliance` of all offices
   over the last month, `anomalies` of the busiest office over the last month and the
   year, and `verify_trail` over the whole chain; with peers measured in the same rounds:
   a full scan of `step_visit` (`SELECT count(*), sum(dwell_seconds)`), `SELECT count(*)
   FROM audit_event`, `chain_hash` over as many events as the chain holds without the
   database, and streaming the chain in `seq` order with psycopg alone (no ORM, no hash);
4. prints a compact table: medians, report time ÷ full-scan time, verify ÷ hash-only;
   with `--explain`, the EXPLAIN (ANALYZE, BUFFERS) of each report's slowest statements;
5. drops the database unless `--keep` (`--database NAME` measures a kept one again).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script, this folder comes first on sys.path; put the repository there instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))  # for reports_gen, after everything else

ADMIN_URL = os.environ.get(
    "SOPFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
YEAR_END = datetime(2026, 11, 1, tzinfo=UTC)
YEAR_START = YEAR_END - timedelta(days=365)
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
SETUP_AT = YEAR_START - timedelta(days=1)
INSPECTOR = "inspektorat.bench"
CHILD_APP = "sopflow-bench-reports"
LOADED = ("sop_case", "step_visit", "payment", "audit_event")

SCAN_SQL = "SELECT count(*), sum(dwell_seconds) FROM step_visit"
COUNT_SQL = "SELECT count(*) FROM audit_event"

# name -> (label in the table, the peer it is divided by)
MEASURES: dict[str, tuple[str, str | None]] = {
    "scan": ("peer: full scan, " + SCAN_SQL.replace("SELECT ", ""), None),
    "bottlenecks_year": ("reports.bottlenecks, busiest SOP, year", "scan"),
    "bottlenecks_month": ("reports.bottlenecks, busiest SOP, month", "scan"),
    "sla_month": ("reports.sla_compliance, all offices, month", "scan"),
    "anomalies_month": ("anomalies.anomalies, busiest office, month", "scan"),
    "anomalies_year": ("anomalies.anomalies, busiest office, year", "scan"),
    "count_audit": ("peer: " + COUNT_SQL, None),
    "hash_only": ("peer: chain_hash only, no database", None),
    "fetch_raw": ("peer: stream audit_event by seq, psycopg only", None),
    "verify": ("queries.verify_trail, whole chain", "hash_only"),
}
VERIFY_SIDE = ("count_audit", "hash_only", "fetch_raw", "verify")


def say(text: str = "") -> None:
    print(text, flush=True)


# ---- the database --------------------------------------------------------------------------


def url_for(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def create_database(name: str) -> str:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return url_for(name)


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(url: str) -> str:
    """The URL as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def setup(url: str) -> tuple[dict[str, Any], dict[str, Any], tuple[int, str]]:
    """Migrate; through the service layer, admins, SOPs, officers and the inspector."""
    from reports_gen import SOP_SHARE, FastCalendar, make_office, plan_sop

    from engine.domain.calendar import calendar_for
    from engine.domain.validator import load_sop
    from engine.service.context import Context
    from engine.service.sops import publish_sop
    from engine.service.users import add_user
    from engine.store.db import make_engine
    from engine.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(make_engine(url))
    ctx = Context(engine, clock=lambda: SETUP_AT)
    sources = {p: p.read_bytes() for p in sorted((ROOT / "workflows").glob("*.yaml"))}
    sops = {p: load_sop(raw, p.name) for p, raw in sources.items()}
    by_opd: dict[str, list[Path]] = {}
    for path, sop in sops.items():
        by_opd.setdefault(sop.opd, []).append(path)
    offices = {}
    for opd, paths in sorted(by_opd.items()):
        admin, _token = add_user(ctx, f"admin.{opd}", opd=opd, admin=True)
        for path in paths:
            publish_sop(ctx, admin, sources[path])
        roles = sorted({r for p in paths for r in sops[p].roles})
        office, officers = make_office(opd, roles)
        for name, held in officers:
            add_user(ctx, name, opd=opd, roles=tuple(held))
        offices[opd] = office
    add_user(ctx, INSPECTOR, inspector=True)
    lo, hi = YEAR_START.date() - timedelta(days=3), YEAR_END.date() + timedelta(days=400)
    calendars: dict[Any, Any] = {}
    plans = {}
    for sop in sorted(sops.values(), key=lambda s: -SOP_SHARE.get(s.key, 0)):
        if sop.calendar not in calendars:
            calendars[sop.calendar] = FastCalendar(calendar_for(sop.calendar), lo, hi)
        plans[sop.key] = plan_sop(sop, calendars[sop.calendar])
    with engine.connect() as c:
        from sqlalchemy import text

        seq, digest = c.execute(
            text("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
        ).one()
    engine.dispose()
    return plans, offices, (int(seq), str(digest))


def drop_for_load(conn: Any) -> list[str]:
    """Drop the loaded tables' secondary indexes and foreign keys; returns the DDL to
    re-create them exactly."""
    indexes = conn.execute(
        """SELECT indexname, indexdef FROM pg_indexes
           WHERE schemaname = 'public' AND tablename = ANY(%s)
             AND indexname NOT IN (SELECT conname FROM pg_constraint)
           ORDER BY tablename, indexname""",
        (list(LOADED),),
    ).fetchall()
    fks = conn.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)""",
        (list(LOADED),),
    ).fetchall()
    for name, _ddl in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    for table, name, _ddl in fks:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    conn.commit()
    return [ddl for _n, ddl in indexes] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}' for table, name, ddl in fks
    ]


def schema_of(conn: Any) -> set[tuple[str, ...]]:
    """Index and constraint definitions of the loaded tables, to check they came back."""
    rows = conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)",
        (list(LOADED),),
    ).fetchall()
    cons = conn.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid::regclass::text = ANY(%s)""",
        (list(LOADED),),
    ).fetchall()
    return {tuple(r) for r in rows} | {tuple(r) for r in cons}


def generate(url: str, cases: int, per_case: float) -> dict[str, Any]:
    """Setup, history, indexes, VACUUM ANALYZE; returns what was made and how long it took."""
    import psycopg
    from reports_gen import History

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plans, offices, head = setup(url)
    timings["setup through the service layer"] = time.perf_counter() - t0
    with psycopg.connect(pg_url(url)) as conn:
        before = schema_of(conn)
        recreate = drop_for_load(conn)
    t0 = time.perf_counter()
    history = History(
        pg_url(url), plans, offices, YEAR_START, YEAR_END, head, per_case, progress=say
    )
    stats = history.run(cases)
    timings["generate + COPY"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with psycopg.connect(pg_url(url), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for ddl in recreate:
            conn.execute(ddl)
        for table, column in (("sop_case", "pk"), ("step_visit", "id"), ("payment", "id")):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"(SELECT coalesce(max({column}), 0) + 1 FROM {table}), false)"
            )
        after = schema_of(conn)
        if before != after:
            raise AssertionError(f"indexes differ after the load: {before ^ after}")
        timings["indexes + foreign keys"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        timings["VACUUM ANALYZE"] = time.perf_counter() - t0
    return {
        "stats": stats,
        "timings": timings,
        "copy_seconds": history.copy_seconds,
        "recreated": len(recreate),
    }


def describe(url: str) -> dict[str, Any]:
    """What is in the database: counts, sizes, the busiest SOP and office."""
    import psycopg

    with psycopg.connect(pg_url(url)) as conn:

        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()

        out = {
            "cases": one("SELECT count(*) FROM sop_case")[0],
            "open_cases": one("SELECT count(*) FROM sop_case WHERE status = 'open'")[0],
            "visits": one("SELECT count(*) FROM step_visit")[0],
            "open_visits": one("SELECT count(*) FROM step_visit WHERE left_at IS NULL")[0],
            "paused_visits": one("SELECT count(*) FROM step_visit WHERE paused")[0],
            "payments": one("SELECT count(*) FROM payment")[0],
            "mismatches": one("SELECT count(*) FROM payment WHERE fee_mismatch")[0],
            "events": one("SELECT max(seq) FROM audit_event")[0],
            "busiest_sop": one(
                "SELECT sop, count(*) FROM sop_case GROUP BY sop ORDER BY 2 DESC LIMIT 1"
            ),
            "busiest_opd": one(
                "SELECT opd, count(*) FROM sop_case GROUP BY opd ORDER BY 2 DESC LIMIT 1"
            ),
            "sizes": conn.execute(
                """SELECT relname, pg_table_size(oid), pg_indexes_size(oid) FROM pg_class
                   WHERE relname = ANY(%s) ORDER BY relname""",
                (list(LOADED),),
            ).fetchall(),
            "settings": conn.execute(
                """SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers',
                   'work_mem', 'max_parallel_workers_per_gather', 'jit', 'effective_cache_size',
                   'random_page_cost') ORDER BY name"""
            ).fetchall(),
            "server": one("SHOW server_version")[0],
        }
    return out


# ---- one measurement, in a process of its own ------------------------------------------------


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement and return its figures (runs in a fresh interpreter)."""
    from sqlalchemy import event, text

    from engine.service import anomalies, queries, reports
    from engine.service.context import Context
    from engine.service.users import Principal
    from engine.store.db import make_engine

    url, name = spec["url"], spec["measure"]
    engine = make_engine(url, connect_args={"application_name": CHILD_APP})
    ctx = Context(engine, clock=lambda: YEAR_END)
    inspector = Principal(INSPECTOR, None, frozenset(), inspector=True)
    sop, opd = spec["sop"], spec["opd"]
    empty = (datetime(1990, 1, 1, tzinfo=UTC), datetime(1990, 1, 2, tzinfo=UTC))
    month = (MONTH_START, YEAR_END)
    year = (YEAR_START, YEAR_END)

    def sql(statement: str) -> Any:
        with ctx.reader() as uow:
            return list(uow.session.execute(text(statement)).one())

    calls: dict[str, Any] = {
        "scan": (lambda: sql(SCAN_SQL), None),
        "count_audit": (lambda: sql(COUNT_SQL), None),
        "bottlenecks_year": (
            lambda: reports.bottlenecks(ctx, inspector, sop, *year),
            lambda: reports.bottlenecks(ctx, inspector, sop, *empty),
        ),
        "bottlenecks_month": (
            lambda: reports.bottlenecks(ctx, inspector, sop, *month),
            lambda: reports.bottlenecks(ctx, inspector, sop, *empty),
        ),
        "sla_month": (
            lambda: reports.sla_compliance(ctx, inspector, None, *month),
            lambda: reports.sla_compliance(ctx, inspector, None, *empty),
        ),
        "anomalies_month": (
            lambda: anomalies.anomalies(ctx, inspector, opd, *month),
            lambda: anomalies.anomalies(ctx, inspector, opd, *empty),
        ),
        "anomalies_year": (
            lambda: anomalies.anomalies(ctx, inspector, opd, *year),
            lambda: anomalies.anomalies(ctx, inspector, opd, *empty),
        ),
        "verify": (lambda: queries.verify_trail(ctx, inspector), None),
        "fetch_raw": (lambda: fetch_raw(url), None),
    }
    run, warm = hash_only(url, spec["events"]) if name == "hash_only" else calls[name]
    if warm is not None:
        warm()  # parses the SOPs and compiles the statements: what a warm worker has done
    statements: dict[str, list[Any]] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any):
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any):
        took = time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        entry = statements.setdefault(statement, [0, 0.0, 0.0, None])
        entry[0] += 1
        entry[1] += took
        if took >= entry[2]:
            entry[2], entry[3] = took, params

    rss_before = _status("VmRSS")
    _reset_peak()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    result = run()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, Any] = {
        "wall": wall,
        "cpu": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "peak_rss": _status("VmHWM"),
        "rss_before": rss_before,
        "summary": summarize(name, result),
        "sql_seconds": sum(e[1] for e in statements.values()),
        "statements": [
            {"sql": " ".join(s.split())[:160], "count": e[0], "seconds": e[1], "max": e[2]}
            for s, e in sorted(statements.items(), key=lambda kv: -kv[1][1])[:5]
        ],
    }
    if spec.get("explain"):
        out["plans"] = []
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for s, e in sorted(statements.items(), key=lambda kv: -kv[1][2])[:4]:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + s, e[3])
                plan = "\n".join(r[0] for r in cur.fetchall())
                out["plans"].append({"sql": s, "params": repr(e[3]), "plan": plan})
            raw.rollback()
        finally:
            raw.close()
    return out


def _status(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    """Reset the peak RSS (VmHWM) to the current RSS, so the peak is the call's own.

    (`ru_maxrss` will not do: a child inherits its parent's peak across fork and exec.)
    """
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def hash_only(url: str, events: int) -> tuple[Any, None]:
    """`chain_hash` over `events` events without the database: a sample of the stored
    events (up to 200,000, spread over the chain, read before the clock starts) hashed
    round and round, each at its own `seq`, as `verify_rows` hashes them."""
    import psycopg

    from engine.domain.audit import GENESIS, Event, chain_hash

    step = max(1, events // 200_000)
    with psycopg.connect(pg_url(url)) as conn:
        rows = conn.execute(
            "SELECT at, type, opd, sop, case_id, actor, from_step, to_step, data "
            "FROM audit_event WHERE seq %% %s = 0 ORDER BY seq",
            (step,),
        ).fetchall()
    pool = [Event(r[1], r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]
    del rows

    def run() -> int:
        prev, n = GENESIS, len(pool)
        for seq in range(1, events + 1):
            prev = chain_hash(prev, seq, pool[seq % n])
        return events

    return run, None


def fetch_raw(url: str) -> int:
    """Every event in seq order, as psycopg tuples (json decoded), nothing else done."""
    import psycopg

    n = 0
    with psycopg.connect(pg_url(url), application_name=CHILD_APP) as conn:
        with conn.cursor(name="chain") as cur:
            cur.itersize = 5000
            cur.execute("SELECT * FROM audit_event ORDER BY seq")
            for _row in cur:
                n += 1
    return n


def summarize(name: str, result: Any) -> str:
    if name.startswith("bottlenecks"):
        visits = sum(s["visits"] for s in result["steps"])
        return f"{len(result['steps'])} steps, {len(result['officers'])} officer rows, " + (
            f"{visits:,} visits"
        )
    if name == "sla_month":
        visits = sum(r["visits"] for r in result["opds"])
        return f"{len(result['officers'])} officer rows, {visits:,} visits"
    if name.startswith("anomalies"):
        kinds: dict[str, int] = {}
        for item in result["items"]:
            kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
        return f"{len(result['items'])} items: " + ", ".join(
            f"{k} {v}" for k, v in sorted(kinds.items())
        )
    if name == "verify":
        return f"ok={result['ok']} checked={result['checked']:,}"
    if name in ("hash_only", "fetch_raw"):
        return f"{result:,} events"
    return repr(result)


# ---- the rounds ----------------------------------------------------------------------------


def cancel_children(url: str) -> None:
    """Cancel what a killed measurement left running in the benchmark database."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (name, CHILD_APP),
        )


def measure_once(spec: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """One measurement in a fresh interpreter; None when it ran out of time."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        cancel_children(spec["url"])
        return None
    if done.returncode != 0:
        raise RuntimeError(f"{spec['measure']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rounds(
    url: str,
    names: list[str],
    runs: dict[str, int],
    base: dict[str, Any],
    limits: dict[str, float],
) -> dict[str, list[dict[str, Any] | None]]:
    results: dict[str, list[dict[str, Any] | None]] = {n: [] for n in names}
    timed_out: set[str] = set()
    for r in range(max(runs.values())):
        for name in names:
            if r >= runs[name] or name in timed_out:
                continue
            got = measure_once({**base, "measure": name}, limits[name])
            results[name].append(got)
            if got is None:
                timed_out.add(name)
                say(f"  round {r + 1}: {name:<18} did not finish in {limits[name]:.0f} s: stopped")
            else:
                say(
                    f"  round {r + 1}: {name:<18} {got['wall']:8.2f} s  cpu {got['cpu']:7.2f} s"
                    f"  peak RSS {got['peak_rss'] / 2**20:6.0f} MB  {got['summary']}"
                )
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(
    results: dict[str, list[dict[str, Any] | None]], events: int, limits: dict[str, float]
) -> str:
    med: dict[str, float | None] = {}
    for name, runs in results.items():
        walls = [r["wall"] for r in runs if r is not None]
        med[name] = median(walls) if walls and all(r is not None for r in runs) else None
    lines = [
        "| measurement | median s | runs (s) | Python CPU s | in SQL s | peak RSS MB | ratio |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for name, runs in results.items():
        label, peer = MEASURES[name]
        timeout = limits[name]
        done = [r for r in runs if r is not None]
        per_run = " / ".join(f"{r['wall']:.2f}" if r else f">{timeout:.0f}" for r in runs)
        m = med[name]
        if m is None:
            shown = f">{timeout:.0f} (stopped)"
        else:
            shown = f"{m:.2f}"
        cpu = median([r["cpu"] for r in done]) if done else float("nan")
        sql = median([r["sql_seconds"] for r in done]) if done else float("nan")
        rss = max(r["peak_rss"] for r in done) / 2**20 if done else float("nan")
        ratio = ""
        if peer is not None and m is not None and med.get(peer):
            unit = "full scan" if peer == "scan" else "hash-only"
            ratio = f"{m / med[peer]:.1f} × {unit}"  # type: ignore[operator]
        if name in VERIFY_SIDE and name != "count_audit" and m:
            ratio = (ratio + "; " if ratio else "") + f"{events / m:,.0f} events/s"
        sql_text = "" if name in ("hash_only", "fetch_raw", "verify") else f"{sql:.2f}"
        lines.append(
            f"| {label} | {shown} | {per_run} | {cpu:.2f} | {sql_text} | {rss:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def headline(
    results: dict[str, list[dict[str, Any] | None]], info: dict[str, Any], quick: bool
) -> dict[str, Any]:
    """What `--json` writes: each measurement's median wall and CPU seconds (None when a run
    did not finish), the peer it is divided by, and the database's size."""
    measures: dict[str, Any] = {}
    for name, runs in results.items():
        done = [r for r in runs if r is not None]
        whole = bool(done) and len(done) == len(runs)
        measures[name] = {
            "label": MEASURES[name][0],
            "peer": MEASURES[name][1],
            "wall_s": median([r["wall"] for r in done]) if whole else None,
            "cpu_s": median([r["cpu"] for r in done]) if whole else None,
            "peak_rss_mb": max(r["peak_rss"] for r in done) / 2**20 if done else None,
            "runs": len(runs),
        }
    return {
        "quick": quick,
        "cases": info["cases"],
        "visits": info["visits"],
        "events": info["events"],
        "measures": measures,
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--events-per-case", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="50,000 cases")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--database", help="measure this kept database; generate nothing")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument("--verify-runs", type=int, help="runs of the verify side (--runs)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds a report call may take before it is stopped (900)",
    )
    parser.add_argument(
        "--verify-timeout", type=float, default=3600.0, help="the same for the verify side (3600)"
    )
    parser.add_argument("--only", help="comma-separated measurements: " + ", ".join(MEASURES))
    parser.add_argument(
        "--explain",
        metavar="FILE",
        help="also write EXPLAIN (ANALYZE, BUFFERS) of the reports' slowest statements to FILE",
    )
    parser.add_argument("--json", type=Path, help="also write the medians to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.cases = 50_000
    names = [n.strip() for n in args.only.split(",")] if args.only else list(MEASURES)
    runs = {n: (args.verify_runs or args.runs) if n in VERIFY_SIDE else args.runs for n in names}

    started = time.perf_counter()
    db = args.database or f"sopflow_bench_reports_{secrets.token_hex(4)}"
    url = url_for(db) if args.database else create_database(db)
    url = url.replace("postgresql://", "postgresql+psycopg://")
    say(f"database {db}")
    try:
        if not args.database:
            say(f"generating {args.cases:,} cases, ~{args.events_per_case:g} events per case …")
            made = generate(url, args.cases, args.events_per_case)
            st = made["stats"]
            say(f"generated in {sum(made['timings'].values()):.0f} s (setup, not measured):")
            for what, secs in made["timings"].items():
                say(f"  {what:<34} {secs:8.1f} s")
            say(
                f"  (COPY busy on its thread for {made['copy_seconds']:.0f} s of it; "
                f"{made['recreated']} indexes and foreign keys re-created; "
                f"{st.checked_canonical:,} canonical forms checked against the engine's)"
            )
            say(
                "  events by type: "
                + ", ".join(
                    f"{k} {v:,}" for k, v in sorted(st.by_type.items(), key=lambda kv: -kv[1])
                )
            )
        info = describe(url)
        say(
            f"database: {info['cases']:,} cases ({info['open_cases']:,} open), "
            f"{info['visits']:,} step visits ({info['open_visits']:,} open, "
            f"{info['paused_visits']:,} paused), {info['payments']:,} payments "
            f"({info['mismatches']:,} fee mismatches), {info['events']:,} audit events"
        )
        say(
            "sizes: "
            + ", ".join(
                f"{n} {t / 2**30:.2f} GB + indexes {i / 2**30:.2f} GB" for n, t, i in info["sizes"]
            )
        )
        say(
            "PostgreSQL "
            + info["server"]
            + ": "
            + ", ".join(f"{n}={s}{u or ''}" for n, s, u in info["settings"])
        )
        sop, opd = info["busiest_sop"][0], info["busiest_opd"][0]
        say(
            f"busiest SOP {sop} ({info['busiest_sop'][1]:,} cases), busiest office {opd} "
            f"({info['busiest_opd'][1]:,} cases); year {YEAR_START:%Y-%m-%d} – "
            f"{YEAR_END:%Y-%m-%d}, month {MONTH_START:%Y-%m-%d} – {YEAR_END:%Y-%m-%d}"
        )
        base = {"url": url, "sop": sop, "opd": opd, "events": info["events"]}
        # warm the caches once, unmeasured
        import psycopg

        with psycopg.connect(pg_url(url)) as conn:
            conn.execute(SCAN_SQL).fetchall()
            conn.execute(COUNT_SQL).fetchall()
        say(f"measuring: {runs} run(s) each, round-robin, each call in a fresh process")
        limits = {n: args.verify_timeout if n in VERIFY_SIDE else args.timeout for n in names}
        results = rounds(url, names, runs, base, limits)
        say()
        say(table(results, info["events"], limits))
        if args.json:
            args.json.write_text(json.dumps(headline(results, info, args.quick), indent=2))
        if args.explain:
            explain(url, base, names, args.explain, args.timeout)
        say(f"\nwhole run {time.perf_counter() - started:.0f} s; {date.today()}")
        return 0
    finally:
        if not args.keep and not args.database:
            drop_database(db)
            say(f"dropped {db}")
        elif not args.database:
            say(f"kept {db}: measure it again with --database {db}")


def explain(url: str, base: dict[str, Any], names: list[str], path: str, timeout: float) -> None:
    """One more call of each report with EXPLAIN (ANALYZE, BUFFERS) of its slowest statements."""
    out = []
    for name in names:
        if name in ("scan", "count_audit", "hash_only", "fetch_raw", "verify"):
            continue
        got = measure_once({**base, "measure": name, "explain": True}, timeout)
        if got is None:
            out.append(f"## {name}: did not finish in {timeout:.0f} s\n")
            continue
        out.append(f"## {name}: {got['wall']:.2f} s\n")
        for s in got["statements"]:
            out.append(f"- {s['seconds']:.2f} s in {s['count']} call(s): {s['sql']}")
        for p in got["plans"]:
            out.append(
                f"\n```sql\n{p['sql'].strip()}\n-- {p['params']}\n```\n```\n{p['plan']}\n```"
            )
        out.append("")
    Path(path).write_text("\n".join(out))
    say(f"plans written to {path}")


if __name__ == "__main__":
    sys.exit(main())
