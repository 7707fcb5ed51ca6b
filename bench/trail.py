"""The verifiable trail's costs, each beside a peer measured in the same run (PostgreSQL).

1. appends: events appended one per transaction (as each transition appends its event),
   with no checkpointing, and with `checkpoint()` running every second beside them (the
   scheduler runs it every five); and how fast `checkpoint()` takes events into the tree;
2. verify: the whole chain recomputed (`audit.verify`), the chain and the tree's root
   (`tree.verify_against`), beside SHA-256 alone over the same canonical bytes;
3. proofs at 1,000,000 leaves (made directly, not events): inclusion and consistency proof
   sizes, and the time to read and compute one from the stored tree.

    .venv/bin/python bench/trail.py            # --appends 3000 --events 200000 --leaves 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import secrets
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

# the repository, not bench/ (whose transitions.py would shadow the `transitions` package)
sys.path[0] = str(Path(__file__).resolve().parents[1])

from engine.domain import merkle  # noqa: E402
from engine.domain.audit import GENESIS, Event, canonical  # noqa: E402
from engine.service import checkpoints  # noqa: E402
from engine.service.context import Context  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.store import audit, tree  # noqa: E402
from engine.store.db import make_engine  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402

POSTGRES = os.environ.get("SOPFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def database() -> tuple[str, str]:
    name = f"sopflow_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, POSTGRES.rsplit("/", 1)[0] + "/" + name


def drop(name: str) -> None:
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def event(i: int, at: datetime) -> Event:
    """An event shaped like a transition's."""
    return Event(
        type="case.transition",
        at=at,
        opd="dinas-bench",
        sop="izin-bench",
        case_id=f"C{i % 997:06d}",
        actor=f"petugas-{i % 16}",
        from_step="a",
        to_step="b",
        data={"transition": "maju", "request_id": f"r{i:012d}", "off_hours": False},
    )


def appends(
    ctx: Context, settings: Settings, count: int, with_tree: bool
) -> tuple[float, list[tuple[float, int]]]:
    """Events/s appended one per transaction; with the checkpoint job every second beside."""
    stop = threading.Event()
    runs: list[tuple[float, int]] = []  # each checkpoint run: seconds, events it took in

    def job() -> None:
        last = checkpoints.checkpoint(ctx, settings)
        while not stop.wait(1.0):
            started = time.perf_counter()
            size = checkpoints.checkpoint(ctx, settings)
            runs.append((time.perf_counter() - started, size - last))
            last = size

    thread = threading.Thread(target=job) if with_tree else None
    if thread:
        thread.start()
    at = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(count):
        with ctx.uow() as uow:
            uow.record(event(i, at))
            uow.commit()
    elapsed = time.perf_counter() - started
    stop.set()
    if thread:
        thread.join()
        checkpoints.checkpoint(ctx, settings)  # the rest, before the next run
    return count / elapsed, runs


def tree_size(ctx: Context) -> int:
    with ctx.reader() as uow:
        return tree.tree_size(uow.session)


def fill(url: str, count: int) -> list[bytes]:
    """Insert `count` chained events straight into audit_event (COPY); their canonical bytes."""
    at = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    buffer = io.StringIO()
    prev = GENESIS
    canon = []
    for i in range(1, count + 1):
        e = event(i, at + timedelta(seconds=i))
        body = canonical(i, e)
        canon.append(body)
        digest = hashlib.sha256(prev.encode() + body).hexdigest()
        data = f'{{"transition": "maju", "request_id": "r{i:012d}", "off_hours": false}}'
        buffer.write(
            "\t".join(
                [str(i), (e.at).isoformat(), e.type, e.opd or "", e.sop or "", e.case_id or "",
                 e.actor or "", e.from_step or "", e.to_step or "", data, prev, digest]
            ) + "\n"
        )  # fmt: skip
        prev = digest
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY audit_event (seq, at, type, opd, sop, case_id, actor, from_step, to_step, "
            "data, prev_hash, hash) FROM STDIN"
        ) as copy:
            copy.write(buffer.getvalue())
    return canon


def hashing_alone(canon: list[bytes]) -> float:
    """Events/s of SHA-256 over the same bytes the chain hashes, nothing else."""
    started = time.perf_counter()
    prev = GENESIS
    for body in canon:
        prev = hashlib.sha256(prev.encode() + body).hexdigest()
    return len(canon) / (time.perf_counter() - started)


def store_leaves(url: str, leaves: int) -> tuple[merkle.MemoryTree, float]:
    """A tree of `leaves` random leaves, built in memory and copied into merkle_node."""
    started = time.perf_counter()
    whole = merkle.MemoryTree(merkle.leaf_hash(os.urandom(32)) for _ in range(leaves))
    built = time.perf_counter() - started
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        # only in this benchmark's own database, past the append-only trigger
        cur.execute("SET session_replication_role = replica")
        cur.execute("DELETE FROM merkle_node")
        with cur.copy("COPY merkle_node (level, idx, hash) FROM STDIN") as copy:
            for level, row in enumerate(whole.levels):
                for idx, digest in enumerate(row):
                    copy.write_row((level, idx, digest))
    return whole, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    name, url = database()
    try:
        engine = make_engine(url)
        upgrade(engine)
        ctx = Context(engine)
        settings = Settings(data_dir=Path(f"/tmp/{name}"))

        print(f"## appends, one event per transaction ({args.appends} a run)")
        plain, treed, jobs = [], [], []
        for _ in range(args.rounds):
            plain.append(appends(ctx, settings, args.appends, with_tree=False)[0])
            rate, runs = appends(ctx, settings, args.appends, with_tree=True)
            treed.append(rate)
            jobs += runs
        print(f"without the tree: {statistics.median(plain):,.0f} events/s  {plain}")
        print(f"checkpoint every 1 s beside: {statistics.median(treed):,.0f} events/s  {treed}")
        took = [t for t, n in jobs if n]
        if took:
            absorbed = sum(n for _, n in jobs) / sum(t for t, _ in jobs)
            median, longest = statistics.median(took) * 1000, max(took) * 1000
            print(f"checkpoint runs: {len(jobs)}, median {median:.0f} ms, max {longest:.0f} ms; "
                  f"{absorbed:,.0f} events/s into the tree")  # fmt: skip
        with engine.begin() as conn:
            conn.exec_driver_sql("SET session_replication_role = replica")
            for table in ("cosignature", "checkpoint", "merkle_node", "audit_event"):
                conn.exec_driver_sql(f"DELETE FROM {table}")

        print(f"\n## verify ({args.events:,} events, straight into the table)")
        canon = fill(url, args.events)
        print(f"SHA-256 alone over the canonical bytes: {hashing_alone(canon):,.0f} events/s")
        started = time.perf_counter()
        with ctx.reader() as uow:
            result = audit.verify(uow.session)
        chain = args.events / (time.perf_counter() - started)
        assert result.ok and result.checked == args.events, result
        print(f"audit.verify (chain only): {chain:,.0f} events/s")
        started = time.perf_counter()
        while checkpoints.checkpoint(ctx, settings) < args.events:
            pass
        print(f"checkpoint() taking them into the tree: "
              f"{args.events / (time.perf_counter() - started):,.0f} events/s")  # fmt: skip
        with ctx.reader() as uow:
            digest = tree.root(uow.session, args.events)
            started = time.perf_counter()
            checked = tree.verify_against(uow.session, args.events, digest)
        both = args.events / (time.perf_counter() - started)
        assert checked.ok, checked
        print(f"verify against a checkpoint (chain and tree root): {both:,.0f} events/s")

        print(f"\n## proofs at {args.leaves:,} leaves")
        whole, built = store_leaves(url, args.leaves)
        print(f"building the tree in memory: {args.leaves / built:,.0f} leaves/s")
        size = args.leaves
        sample = random.Random(7)
        for kind in ("inclusion", "consistency"):
            lengths, times = [], []
            for _ in range(200):
                if kind == "inclusion":
                    index = sample.randrange(size)

                    def make(s: merkle.Subtree, index: int = index) -> list[bytes]:
                        return merkle.inclusion_proof(s, index, size)
                else:
                    first = sample.randrange(1, size)

                    def make(s: merkle.Subtree, first: int = first) -> list[bytes]:
                        return merkle.consistency_proof(s, first, size)

                started = time.perf_counter()
                with ctx.reader() as uow:
                    proof = tree.compute(uow.session, make)
                times.append(time.perf_counter() - started)
                assert proof == make(whole.subtree)
                lengths.append(len(proof))
            print(f"{kind}: {min(lengths)}-{max(lengths)} hashes "
                  f"({max(lengths) * 32} bytes at most); read and computed from the stored tree "
                  f"in {statistics.median(times) * 1000:.1f} ms median, "
                  f"{max(times) * 1000:.1f} ms max")  # fmt: skip
        started = time.perf_counter()
        with ctx.reader() as uow:
            assert tree.root(uow.session, size) == whole.root()
        print(f"root at {size:,}: {(time.perf_counter() - started) * 1000:.1f} ms")
        engine.dispose()
    finally:
        drop(name)


if __name__ == "__main__":
    main()
