"""A transition's cost inside one process, with no HTTP: CPU and database round trips.

    .venv/bin/python bench/inprocess.py [--transitions 2000] [--profile out.prof]

Fires `maju`/`mundur` on one case through the service layer (`cases.fire_transition`) on a
fresh PostgreSQL database, and prints the CPU seconds of this process per transition, the
statements sent per transition (counted by SQLAlchemy's `before_cursor_execute`), and the
wall time; beside it, the same loop running only `SELECT 1` round trips as the peer.
"""

from __future__ import annotations

import argparse
import cProfile
import secrets
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench.transitions import SOP_KEY, create_database, drop_database, prepare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=2000)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()

    from sqlalchemy import event, text

    from engine.service.cases import fire_transition
    from engine.service.context import Context
    from engine.service.users import Principal
    from engine.store.db import make_engine

    name = f"sopflow_inproc_{secrets.token_hex(4)}"
    url = create_database(name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            jobs, _ = prepare(url, 1, Path(tmp))
        engine = make_engine(url)
        statements = 0

        def count(*_a: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(engine, "before_cursor_execute", count)
        ctx = Context(engine)
        who = Principal("petugas-000", "dinas-bench", frozenset({"petugas"}))
        case_id, step = jobs[0].case_id, jobs[0].step
        assert case_id
        nxt = {"a": "maju", "b": "mundur"}
        for _ in range(50):  # warm caches and the pool
            step = fire_transition(ctx, who, case_id, nxt[step])["step"]
        statements = 0
        profiler = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for _ in range(args.transitions):
            step = fire_transition(ctx, who, case_id, nxt[step])["step"]
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        n = args.transitions
        per_statements = statements / n
        # the peer: as many bare round trips, each in its own transaction
        rounds = round(per_statements)
        with engine.connect() as conn:
            peer_cpu, peer_wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                for _ in range(rounds):
                    conn.execute(text("SELECT 1"))
                conn.commit()
            peer_cpu, peer_wall = time.process_time() - peer_cpu, time.perf_counter() - peer_wall
        engine.dispose()
        print(f"sopflow in process ({SOP_KEY}, one case, {n} transitions)")
        print(f"  statements per transition: {per_statements:.2f}")
        print(f"  CPU per transition:        {cpu / n * 1e3:.3f} ms (this process)")
        print(f"  wall per transition:       {wall / n * 1e3:.3f} ms")
        print(f"peer: {rounds} x SELECT 1 + COMMIT per loop")
        print(f"  CPU per loop:              {peer_cpu / n * 1e3:.3f} ms")
        print(f"  wall per loop:             {peer_wall / n * 1e3:.3f} ms")
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
