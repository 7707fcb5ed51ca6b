"""Every benchmark in bench/, one after the other, and one table of ratios against the peers
measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--full-reports] [--out DIR]

Runs, each as its own subprocess writing its figures as JSON (`--json`), its whole output
kept in DIR (a new temporary folder unless `--out` is given):

1. bench/transitions.py: case transitions through the HTTP API on PostgreSQL, 16 clients,
   against a bare Flask endpoint under the same gunicorn (`--seconds 10 --rounds 3`;
   without `--quick`, its defaults: 20 s);
2. bench/timers.py: sweep cost against pending timers, and escalation lateness with 100,000
   pending against Celery ETA tasks (`--quick`: 2,000 rungs due together; without, 10,000);
3. bench/reports.py: reports and verify at scale (`--quick` unless `--full-reports`), when
   the script is there;
4. bench/spiff_peer.py: sopflow's transition in-process against SpiffWorkflow running the
   same process (skipped, and said so, when SpiffWorkflow is not installed:
   `.venv/bin/pip install SpiffWorkflow`).

Then prints one table: benchmark, sopflow's figure, the peer, its figure, the ratio, the
target and whether it was met. `--quick` takes about 6–9 minutes on 2 cores. Needs
PostgreSQL on 127.0.0.1:5432 (or SOPFLOW_BENCH_POSTGRES) and redis-server on PATH, as the
benchmarks themselves do. Exits non-zero when a benchmark failed (not when a target is
missed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass
class Result:
    """One benchmark's run: its figures (None when it failed or was skipped)."""

    name: str
    argv: list[str]
    log: Path
    seconds: float = 0.0
    code: int | None = None
    data: dict[str, Any] | None = None
    note: str = ""


@dataclass
class Row:
    benchmark: str
    sopflow: str
    peer: str = "—"
    peer_figure: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: str = "—"


@dataclass
class Plan:
    results: list[Result] = field(default_factory=list)


def log(message: str = "") -> None:
    print(message, flush=True)


def has_option(script: Path, option: str) -> bool:
    """Whether `script --help` lists `option` (a script still being written may not)."""
    try:
        out = subprocess.run(
            [sys.executable, str(script), "--help"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and option in out.stdout


def spiff_installed() -> bool:
    out = subprocess.run(
        [sys.executable, "-c", "import SpiffWorkflow"], capture_output=True, cwd=ROOT
    )
    return out.returncode == 0


def run(name: str, argv: list[str], out: Path, timeout: float) -> Result:
    """Run one benchmark script with `--json`, its output to `out/name.log`."""
    json_path = out / f"{name}.json"
    full = [sys.executable, *argv, "--json", str(json_path)]
    result = Result(name, full, out / f"{name}.log")
    shown = " ".join(["python", *argv])
    log(f"[{datetime.now(UTC):%H:%M:%S}] {name}: {shown}")
    t0 = time.monotonic()
    with result.log.open("w") as f:
        f.write(f"$ {' '.join(full)}\n\n")
        f.flush()
        try:
            process = subprocess.run(
                full, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, timeout=timeout,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            result.code = process.returncode
        except subprocess.TimeoutExpired:
            result.note = f"stopped after {timeout:.0f} s"
    result.seconds = time.monotonic() - t0
    if json_path.exists():
        try:
            result.data = json.loads(json_path.read_text())
        except ValueError as e:
            result.note = f"unreadable JSON: {e}"
    state = "ok" if result.code == 0 else f"exit {result.code}"
    if result.note:
        state += f", {result.note}"
    log(f"           {state} in {result.seconds:.0f} s; output in {result.log}")
    if result.code != 0:
        tail = result.log.read_text(errors="replace").splitlines()[-12:]
        log("\n".join(f"           | {line}" for line in tail))
    return result


# ---- the table ------------------------------------------------------------------------------


def num(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    return f"{value:,.{digits}f}"


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def transition_rows(r: Result) -> list[Row]:
    d = r.data
    if d is None:
        return [Row("HTTP transitions", f"failed ({r.note or f'exit {r.code}'}; see {r.log})")]
    sop, bare = d["sopflow"], d["bare"]
    clients = d["clients"]
    rows = [
        Row(
            f"transitions/s through the HTTP API, PostgreSQL, full audit chain, {clients} "
            f"clients, {d['workers']} workers (median of {d['rounds']} × {d['seconds']:g} s)",
            num(sop["rps"]),
            "bare Flask JSON endpoint, same gunicorn",
            num(bare["rps"]),
            num(d["ratio"], 3),
            "≥ 1,000/s",
            yes(sop["rps"] >= 1000),
        ),
        Row(
            "transition latency p99 (median of the runs' p99; all runs pooled)",
            f"{num(sop['p99_ms'], 1)} ms ({num(sop['p99_ms_pooled'], 1)})",
            "bare Flask JSON endpoint",
            f"{num(bare['p99_ms'], 1)} ms ({num(bare['p99_ms_pooled'], 1)})",
            num(sop["p99_ms"] / bare["p99_ms"], 1) if bare["p99_ms"] else "?",
            "< 30 ms",
            yes(sop["p99_ms"] < 30),
        ),
        Row(
            "CPU per request in gunicorn (what bounds throughput on 2 shared cores)",
            f"{num(sop['server_cpu_ms_per_request'], 2)} ms",
            "bare Flask JSON endpoint",
            f"{num(bare['server_cpu_ms_per_request'], 2)} ms",
            num(sop["server_cpu_ms_per_request"] / bare["server_cpu_ms_per_request"], 1)
            if bare["server_cpu_ms_per_request"]
            else "?",
        ),
    ]
    service = d.get("inprocess") or {}
    if service:
        rows.append(
            Row(
                "authenticate + fire_transition in-process on PostgreSQL, one at a time",
                f"{num(service['wall_ms'], 2)} ms ({num(service['cpu_ms'], 2)} ms CPU, "
                f"{num(service.get('round trips', 0), 1)} round trips)",
            )
        )
    if not d.get("passed", False):
        rows.append(Row("transitions: errors or audit chain mismatch", f"see {r.log}"))
    return rows


def timer_rows(r: Result) -> list[Row]:
    d = r.data
    if d is None:
        return [Row("SLA timers", f"failed ({r.note or f'exit {r.code}'}; see {r.log})")]
    late, peer, ratio = d["lateness"], d["peer"], d["ratio_largest_smallest"]
    lo, hi = ratio["pending"]
    p99, peer_p99 = late["fired_at"]["p99"], peer["started"]["p99"]
    once = late["exactly_once"] and peer["exactly_once"]
    scale = f"{hi // 1000:,}k / {lo // 1000:,}k pending"
    return [
        Row(
            f"escalation lateness p99, {late['jobs']:,} rungs due at one instant, "
            f"{late['pending']:,} pending (fired_at − due_at)",
            f"{num(p99, 2)} s",
            f"Celery ETA tasks on the same Redis ({peer['pool']})",
            f"{num(peer_p99, 2)} s",
            num(p99 / peer_p99, 2) if peer_p99 else "?",
            "< 1 s",
            yes(p99 < 1),
        ),
        Row(
            f"sweep firing {d['due_per_firing_sweep']:,} rungs: cost ratio {scale}",
            f"{num(ratio['fire'], 2)} (CPU {num(ratio['fire_cpu'], 2)})",
            target="≈ 1 (≤ 1.35, the machine's drift)",
            met=yes(ratio["fire"] <= 1.35),
        ),
        Row(
            f"empty sweep: cost ratio {scale}",
            num(ratio["empty"], 2),
            target="≈ 1 (≤ 1.35, the machine's drift)",
            met=yes(ratio["empty"] <= 1.35),
        ),
        Row(
            "sweep throughput during the burst",
            f"{num(late['rungs_per_s'])} rungs/s",
        ),
        Row("timers: each rung fired exactly once, chain verifies", "yes" if once else "**NO**"),
    ]


def spiff_rows(r: Result | None, reason: str) -> list[Row]:
    if r is None:
        return [Row("in-process step against SpiffWorkflow", f"skipped: {reason}")]
    d = r.data
    if d is None:
        return [Row("in-process step against SpiffWorkflow", f"failed; see {r.log}")]
    f, ratios = d["figures"], d["ratios"]
    return [
        Row(
            f"fire_transition in-process on SQLite (µs per step, {d['cases']} cases × "
            f"{d['steps']} steps)",
            f"{num(f['sopflow_fire']['wall_us'])} ({num(f['sopflow_fire']['cpu_us'])} CPU)",
            "SpiffWorkflow 3: load JSON + complete user task + save JSON, no database",
            f"{num(f['spiff_persist']['wall_us'])} ({num(f['spiff_persist']['cpu_us'])} CPU)",
            num(ratios["sopflow_fire / spiff_persist"], 2),
        ),
        Row(
            "state machine step alone (µs: compile_sop(sop).fire)",
            num(f["machine"]["wall_us"], 1),
            "SpiffWorkflow: complete user task in memory",
            num(f["spiff_memory"]["wall_us"], 1),
            num(ratios["machine / spiff_memory"], 2),
        ),
    ]


def report_rows(r: Result | None, reason: str) -> list[Row]:
    """One row per report measured against a peer (bench/reports.py's MEASURES)."""
    what = "reports and verify at scale (bench/reports.py)"
    if r is None:
        return [Row(what, f"left out: {reason}")]
    d = r.data
    if d is None:
        return [Row(what, f"{r.note or f'exit {r.code}'}; see {r.log}")]
    measures = d["measures"]
    size = f"{d['cases']:,} cases, {d['events']:,} events"
    rows = []
    for m in measures.values():
        peer = measures.get(m["peer"]) if m["peer"] else None
        if peer is None:
            continue
        wall, peer_wall = m["wall_s"], peer["wall_s"]
        figure = "did not finish" if wall is None else f"{num(wall, 2)} s"
        if m["peer"] == "hash_only" and wall:
            figure += f" ({num(d['events'] / wall)} events/s)"
        rows.append(
            Row(
                f"{m['label']} ({size}; median of {m['runs']})",
                figure,
                peer["label"].removeprefix("peer: "),
                "?" if peer_wall is None else f"{num(peer_wall, 2)} s",
                num(wall / peer_wall, 1) if wall and peer_wall else "?",
            )
        )
    return rows or [Row(what, f"no measurement with a peer; see {r.log}")]


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| benchmark | sopflow | peer | peer's figure | ratio sopflow ÷ peer | target | met? |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for w in rows:
        lines.append(
            f"| {w.benchmark} | {w.sopflow} | {w.peer} | {w.peer_figure} | {w.ratio} | "
            f"{w.target} | {w.met} |"
        )
    return lines


# ---- the machine ----------------------------------------------------------------------------


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}), {memory}, {platform.system()} {platform.release()}"


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "engine", "api", "sopflow",
             "worker"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="shorter runs: about 6–9 minutes in all on 2 cores")  # fmt: skip
    parser.add_argument("--full-reports", action="store_true",
                        help="bench/reports.py at full size, not --quick")  # fmt: skip
    parser.add_argument("--out", type=Path, help="folder for the logs and JSON (default: new)")
    parser.add_argument("--only", nargs="+", choices=["transitions", "timers", "reports", "spiff"],
                        help="run only these")  # fmt: skip
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="sopflow-bench-run-"))
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or ["transitions", "timers", "reports", "spiff"])
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    command += " --full-reports" if args.full_reports else ""
    started = datetime.now(UTC)
    t0 = time.monotonic()
    load_start = load_average()
    log(f"sopflow benchmarks — {started:%Y-%m-%d %H:%M} UTC; {machine()}")
    log(f"code: {git_state()}; load average at the start: {load_start}; logs in {out}\n")

    results: dict[str, Result | None] = {}
    skipped: dict[str, str] = {}
    if "transitions" in wanted:
        argv = ["bench/transitions.py"]
        if args.quick:
            argv += ["--seconds", "10", "--rounds", "3"]
        results["transitions"] = run("transitions", argv, out, 900)
    if "timers" in wanted:
        argv = ["bench/timers.py"] + (["--quick"] if args.quick else [])
        results["timers"] = run("timers", argv, out, 1200)
    if "reports" in wanted:
        script = HERE / "reports.py"
        if not script.exists():
            skipped["reports"] = "bench/reports.py is not there yet"
        elif not has_option(script, "--json"):
            skipped["reports"] = "bench/reports.py has no --json option yet"
        else:
            argv = ["bench/reports.py"]
            if not args.full_reports:  # 50,000 cases; one run of the verify side (~60 s each)
                argv += ["--quick"] + (["--verify-runs", "1"] if args.quick else [])
            results["reports"] = run("reports", argv, out, 1800 if args.full_reports else 600)
    if "spiff" in wanted:
        if spiff_installed():
            results["spiff"] = run("spiff", ["bench/spiff_peer.py"], out, 600)
        else:
            skipped["spiff"] = (
                "SpiffWorkflow is not installed (`.venv/bin/pip install SpiffWorkflow`)"
            )
            log(f"spiff: skipped: {skipped['spiff']}")

    rows: list[Row] = []
    transitions, timers = results.get("transitions"), results.get("timers")
    if transitions is not None:
        rows += transition_rows(transitions)
    if timers is not None:
        rows += timer_rows(timers)
    if "reports" in wanted:
        rows += report_rows(results.get("reports"), skipped.get("reports", ""))
    if "spiff" in wanted:
        rows += spiff_rows(results.get("spiff"), skipped.get("spiff", ""))

    elapsed = time.monotonic() - t0
    header = [
        f"- command: `.venv/bin/{command}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; wall time of the run: {elapsed / 60:.1f} min",
        f"- machine: {machine()}",
        f"- code: {git_state()}",
        f"- load average (1/5/15 min) at the start: {load_start}; at the end: {load_average()}",
    ]
    if transitions is not None and transitions.data is not None:
        cpu = transitions.data["sopflow"]["cpu_cores"]
        header.append(
            f"- during the HTTP transition runs the machine was {cpu['machine']:.2f} of "
            f"{os.cpu_count()} cores busy, {cpu['other']:.2f} of them with processes outside "
            "the benchmark (others' work on this shared machine)"
        )
    log("\n## All benchmarks in one table\n")
    for line in header:
        log(line)
    log()
    for line in table(rows):
        log(line)
    log()
    log("Ratios compare figures taken in the same run on the same machine; per-benchmark "
        f"details (profiles, CPU accounting, exactly-once checks) are in {out}/*.log.")  # fmt: skip
    summary = {
        "command": command,
        "started": started.isoformat(),
        "seconds": elapsed,
        "machine": machine(),
        "code": git_state(),
        "rows": [r.__dict__ for r in rows],
        "skipped": skipped,
        "results": {
            k: None if v is None else {"code": v.code, "seconds": v.seconds, "data": v.data}
            for k, v in results.items()
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    failed = [k for k, v in results.items() if v is not None and v.code != 0]
    if failed:
        log(f"\nfailed: {', '.join(failed)} (see their logs)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
