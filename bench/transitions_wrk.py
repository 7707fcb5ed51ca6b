"""Case transitions driven by wrk, a load generator written in C, beside bare Flask.

    .venv/bin/python bench/transitions_wrk.py [--connections 16] [--seconds 15] [--rounds 3]

bench/transitions.py drives the servers with a Python load generator, which takes much of
the two cores it shares with them; wrk (Debian's `wrk` package) takes little. One run sets
up as bench/transitions.py does (a fresh PostgreSQL database, the two-step SOP, one user and
one case per connection), starts `sopflow serve` and the bare Flask peer under gunicorn
with the same workers, then alternates bare, sopflow, … with `wrk --latency`, one thread
per connection, each connection firing `maju`, `mundur`, … on its own case. It prints the
medians, the ratio, and whether the audit chain holds exactly the events expected.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench.transitions import (  # noqa: E402
    Bench,
    _git_state,
    create_database,
    drop_database,
    prepare,
    verify_chain,
)

# each wrk thread has one connection and one case: it fires the next transition after a
# 200 and counts what it committed, so the chain can be checked against the count
LUA = r"""
local cases, tokens, counter = {}, {}, 0
%(jobs)s
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  case, token, step = cases[id][1], tokens[id], cases[id][2]
  committed, refused = 0, 0
end
function request()
  local name = (step == "a") and "maju" or "mundur"
  local path = "%(path)s"
  if path == "" then path = "/api/v1/cases/" .. case .. "/transitions" end
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json"}, '{"name":"' .. name .. '"}')
end
function response(status, headers, body)
  if status == 200 then
    committed = committed + 1
    step = (step == "a") and "b" or "a"
  else
    refused = refused + 1
  end
end
function done(summary, latency, requests)
  local c, r = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("committed")
    r = r + t:get("refused")
  end
  io.write(string.format("COMMITTED %%d REFUSED %%d P50 %%f P99 %%f\n", c, r,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def wrk(port: int, script: Path, connections: int, seconds: float) -> dict[str, float]:
    run = subprocess.run(
        ["wrk", f"-t{connections}", f"-c{connections}", f"-d{round(seconds)}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if run.returncode != 0 or "COMMITTED" not in run.stdout:
        sys.exit(f"wrk failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    out = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    c, r, p50, p99 = re.search(r"COMMITTED (\d+) REFUSED (\d+) P50 ([\d.]+) P99 ([\d.]+)",
                               out).groups()  # type: ignore[union-attr]  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "committed": int(c), "refused": int(r), "p50": float(p50),
            "p99": float(p99), "errors": int(errors.group(1)) if errors else 0}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    name = f"sopflow_wrk_{secrets.token_hex(4)}"
    url = create_database(name)
    print(f"sopflow transitions under wrk — code {_git_state()}")
    print(
        f"{args.connections} connections (one wrk thread each), {args.seconds:g} s a run, "
        f"{args.rounds} rounds, gunicorn {args.workers} one-thread gthread workers each"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            jobs, setup_events = prepare(url, args.connections, tmp)
            lines = "\n".join(
                f'cases[{i + 1}] = {{"{j.case_id}", "{j.step}"}}; tokens[{i + 1}] = "{j.token}"'
                for i, j in enumerate(jobs)
            )
            scripts = {target: tmp / f"{target}.lua" for target in ("bare", "sopflow")}
            scripts["bare"].write_text(LUA % {"jobs": lines, "path": "/"})
            bench_args = argparse.Namespace(workers=args.workers, client_procs=1, clients=1)
            bench = Bench(bench_args, name, tmp, url)
            bench.start_servers()
            results: dict[str, list[dict[str, float]]] = {"bare": [], "sopflow": []}
            committed = 0
            try:
                for r in range(args.rounds):
                    for target in ("bare", "sopflow"):
                        # each round starts from where the cases were left
                        scripts["sopflow"].write_text(LUA % {"jobs": lines, "path": ""})
                        m = wrk(bench.servers[target].port, scripts[target], args.connections,
                                args.seconds)  # fmt: skip
                        results[target].append(m)
                        if target == "sopflow":
                            committed += int(m["committed"])
                            # where each case is now: read back, for the next round's script
                            lines = _where(url, jobs, lines)
                        print(f"round {r + 1} {target:8s} {m['rps']:8,.0f} req/s  p50 "
                              f"{m['p50']:6.1f} ms  p99 {m['p99']:6.1f} ms  non-2xx "
                              f"{m['errors']:.0f}")  # fmt: skip
            finally:
                bench.stop_servers()
        ok, checked, rows = verify_chain(url)
        expected = setup_events + committed
        bare = statistics.median(m["rps"] for m in results["bare"])
        ours = statistics.median(m["rps"] for m in results["sopflow"])
        p99 = statistics.median(m["p99"] for m in results["sopflow"])
        print(f"\nmedians: bare {bare:,.0f} req/s, sopflow {ours:,.0f} transitions/s, "
              f"p99 {p99:.1f} ms; ratio {ours / bare:.3f}")  # fmt: skip
        # wrk drops the answers still in flight when a run ends: up to one per connection
        # was committed without being counted
        within = expected <= rows <= expected + args.rounds * args.connections
        print(f"audit chain: verify {'passes' if ok else 'FAILS'}; {checked:,} checked, "
              f"{rows:,} rows, {expected:,} counted by wrk plus at most "
              f"{args.rounds * args.connections} in flight at the runs' ends — "
              f"{'OK' if ok and within else 'MISMATCH'}")  # fmt: skip
        print(json.dumps({"bare": bare, "sopflow": ours, "ratio": ours / bare, "p99": p99}))
    finally:
        drop_database(name)


def _where(url: str, jobs: list, lines: str) -> str:
    """The Lua table lines with each case's current step, read from the database."""
    from sqlalchemy import text

    from engine.store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        steps = dict(conn.execute(text("SELECT id, step FROM sop_case")).all())
    engine.dispose()
    return "\n".join(
        f'cases[{i + 1}] = {{"{j.case_id}", "{steps[j.case_id]}"}}; tokens[{i + 1}] = "{j.token}"'
        for i, j in enumerate(jobs)
    )


if __name__ == "__main__":
    main()
