"""A calendar register change over many open cases, on PostgreSQL.

    .venv/bin/python bench/register.py [--cases 100000]

On a fresh database it creates (and drops at the end): migrates it, publishes an SOP on
`id-working` (a step with `sla: 3d` and a ladder of 75 %, 100 % and 200 %, service time
10d) through the service layer, opens one template case the real way, and clones it with
set-based SQL into `--cases` open cases, each with its open step visit and its timers (three
rungs and the service deadline), entered at the same instant. Then it times, through
`engine.service.calendars`, a national holiday added on the day the step falls due (every
case moves: its step, three rungs and its service deadline, one `sla.rescheduled` event per
moved deadline) and the same day removed again (every case moves back), and checks that the
trail still verifies.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
# run as a script, this file's folder comes first on sys.path, and bench/transitions.py
# would stand in for the `transitions` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from engine.service import calendars, cases  # noqa: E402
from engine.service.context import Context  # noqa: E402
from engine.service.sops import publish_sop  # noqa: E402
from engine.service.users import Principal, add_user  # noqa: E402
from engine.store.db import make_engine  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402

POSTGRES = os.environ.get("SOPFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
WIB = ZoneInfo("Asia/Jakarta")
SOP = """
sop: bench-kalender
version: 1
opd: bench
title: Bench kalender
service_time: 10d
calendar: id-working
roles: {loket: Petugas Loket, kasi: Kepala Seksi, kadis: Kepala Dinas}
steps:
  - {id: daftar, name: Pendaftaran, role: loket, sla: 3d}
  - {id: selesai, name: Selesai, final: true, outcome: completed}
transitions:
  - {name: tutup, from: daftar, to: selesai}
escalation:
  - {at: 75%, action: warn}
  - {at: 100%, action: escalate, to: kasi}
  - {at: 200%, action: escalate, to: kadis}
"""


def clone(conn: psycopg.Connection, template: str, n: int) -> None:
    """`n` copies of the template case, its open visit and its timers."""

    def columns(table: str, skip: set[str]) -> list[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [r[0] for r in rows if r[0] not in skip]

    case_cols = columns("sop_case", {"pk"})
    over = {"id": "t.id || '-' || g", "tracking_code": "t.tracking_code || '-' || g"}
    select = ", ".join(over.get(c, f"t.{c}") for c in case_cols)
    visit_cols = columns("step_visit", {"id"})
    visit_select = ", ".join("c.pk" if c == "case_pk" else f"t.{c}" for c in visit_cols)
    with conn.transaction():
        pk, visit = conn.execute(
            "SELECT c.pk, v.id FROM sop_case c JOIN step_visit v ON v.case_pk = c.pk "
            "WHERE c.id = %s",
            (template,),
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            f"""
            WITH c AS (
                INSERT INTO sop_case ({", ".join(case_cols)})
                SELECT {select} FROM sop_case t, generate_series(1, %(n)s) g
                WHERE t.pk = %(pk)s RETURNING pk
            ), v AS (
                INSERT INTO step_visit ({", ".join(visit_cols)})
                SELECT {visit_select} FROM c, step_visit t WHERE t.id = %(visit)s
                RETURNING id, case_pk
            )
            INSERT INTO sla_timer (due_at, case_pk, visit_id, rung, action, to_role, flag, key)
            SELECT t.due_at, v.case_pk, CASE WHEN t.rung >= 0 THEN v.id END, t.rung, t.action,
                   t.to_role, t.flag,
                   CASE WHEN t.rung >= 0 THEN 'v' || v.id || ':r' || t.rung
                        ELSE 'c' || v.case_pk || ':service' END
            FROM v, sla_timer t WHERE t.case_pk = %(pk)s
            """,
            {"n": n, "pk": pk, "visit": visit},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    name = f"sopflow_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(POSTGRES, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        # Monday 6 July 2026 10:00 WIB: no holiday, no Ramadan near
        entered = datetime(2026, 7, 6, 10, tzinfo=WIB).astimezone(UTC)
        ctx = Context(engine, lambda: entered)
        boss, _ = add_user(ctx, "bench-admin", opd="bench", admin=True)
        publish_sop(ctx, boss, SOP.encode())
        loket, _ = add_user(ctx, "bench-loket", opd="bench", roles=("loket",))
        template = cases.open_case(ctx, loket, "bench-kalender", fields={}, received=[])
        step_due = datetime.fromisoformat(str(template["step_due_at"]))
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            started = time.perf_counter()
            clone(conn, str(template["id"]), args.cases - 1)
            print(f"cloned {args.cases - 1:,} cases in {time.perf_counter() - started:.1f} s")
        keeper = Principal("bench-calendar", None, frozenset(), calendar_admin=True)
        holiday = step_due.astimezone(WIB).date()
        for label, change in (
            ("add", lambda: calendars.add_days(ctx, keeper, holiday, None, "bench SKB", None)),
            ("remove", lambda: calendars.remove_day(ctx, keeper, holiday, "bench SKB")),
        ):
            started = time.perf_counter()
            out = change()
            took = time.perf_counter() - started
            print(f"{label} {holiday}: {out['rescheduled']:,} deadlines moved over "
                  f"{args.cases:,} open cases in {took:.1f} s")  # fmt: skip
        with engine.connect() as c:
            events = c.execute(
                text("SELECT count(*) FROM audit_event WHERE type = 'sla.rescheduled'")
            ).scalar()
        print(f"sla.rescheduled events: {events:,}")
        assert step_due == datetime.fromisoformat(
            str(cases.get_case(ctx, loket, str(template["id"]))["step_due_at"])
        ), "the removal moved the step back"
    finally:
        engine.dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
