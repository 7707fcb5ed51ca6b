"""Simulated weeks of `sopflow demo`: are the planted officers found, and nobody else named?

    .venv/bin/python bench/demo_weeks.py 1-25          # planted weeks, seeds 1 to 25
    .venv/bin/python bench/demo_weeks.py 1-25 --clean  # clean weeks (nobody planted)

Each week runs on a fresh SQLite file (about 30 s a week). Per week it prints who was
planted and found, and every officer named who was not planted; at the end, the planted
levy abuses (`fee_mismatch`) found in N of the weeks, and the weeks in which an honest
officer was named for a fee mismatch (or for anything).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, and bench/transitions.py
# would shadow the `transitions` package: put the repository there instead
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from engine.service import anomalies  # noqa: E402
from engine.service.context import Context  # noqa: E402
from engine.service.users import Principal  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from sopflow import demo  # noqa: E402

INSPECTOR = Principal("inspektorat-bench", None, frozenset(), inspector=True)


def seeds(text: str) -> list[int]:
    """`1-25`, `3,8,2` or `17`."""
    out: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        out += list(range(int(low), int(high or low) + 1))
    return out


def main(argv: list[str]) -> int:
    clean = "--clean" in argv
    args = [a for a in argv if a != "--clean"]
    chosen = seeds(args[0] if args else "1-25")
    levy_found = fee_named = any_named = 0
    for seed in chosen:
        began = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            engine = demo.demo_engine(f"sqlite:///{Path(tmp) / 'demo.db'}")
            try:
                upgrade(engine)
                sim = demo.simulate(Context(engine), seed=seed, planted=not clean)
                end = sim.ended
                ctx = Context(engine, lambda end=end: end)
                items = anomalies.anomalies(ctx, INSPECTOR)["items"]
            finally:
                engine.dispose()
        planted = {(demo.FOUND_AS.get(c, c), o) for c, o in sim.planted.items()}
        named = {(i["kind"], i["actor"]) for i in items if i["actor"]}
        levy = {(demo.FOUND_AS[c], o) for c, o in sim.planted.items() if c in demo.LEVY_CONDUCTS}
        honest = named - planted
        found = bool(levy) and levy <= named
        levy_found += found
        fee_named += any(kind == "fee_mismatch" for kind, _ in honest)
        any_named += bool(honest)
        print(
            f"seed {seed}: {sim.cases} cases, {sim.bills} bills, {sim.payments} paid, "
            f"{sim.extra_payments} extra; planted {sorted(sim.planted.items())}; "
            f"levy abuses found: {found}; others named: {sorted(honest)} "
            f"({time.perf_counter() - began:.0f} s)",
            flush=True,
        )
    weeks = len(chosen)
    if not clean:
        print(f"planted levy abuses found in {levy_found} of {weeks} weeks")
    print(f"an honest officer named for fee_mismatch in {fee_named} of {weeks} weeks")
    print(f"an honest officer named for anything in {any_named} of {weeks} weeks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
