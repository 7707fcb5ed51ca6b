"""sopflow's transition in-process, side by side with SpiffWorkflow running the same process.

    .venv/bin/python bench/spiff_peer.py [--cases 16] [--steps 20] [--rounds 3] [--json PATH]

Needs SpiffWorkflow (`.venv/bin/pip install SpiffWorkflow`; not a project dependency).

The process is the SOP of bench/transitions.py: steps `a` and `b` for the role `petugas`,
`maju` a→b and `mundur` b→a. For SpiffWorkflow it is bench/maju_mundur.bpmn: user tasks
`a` and `b` in the lane `petugas`, and an exclusive gateway after `b` that loops back to
`a` when the task data says `aksi == "mundur"`. Each engine moves `--cases` cases
`--steps` steps each (a, b, a, …), taking the cases in turn, and the figure is the time per
step:

- **sopflow `fire_transition`**: the service command, in-process, on a SQLite file in a
  temporary folder (the embedded default): load the case, check the role and guards, move
  it, write its step visits and audit event, commit;
- **SpiffWorkflow, load + step + save**: what a persistent engine does per request: restore
  the case's workflow from its JSON (`BpmnWorkflowSerializer.deserialize_json`), find the
  ready user task, check its lane against the actor's roles, set the task data, run it and
  the engine steps after it (the gateway), and serialize the workflow to JSON again (kept
  in a dict: no database, no audit trail);
- **sopflow state machine step**: `compile_sop(sop).fire(CaseFacts(step), actor, name)`,
  the domain step alone, no storage;
- **SpiffWorkflow step in memory**: the same Spiff step on a workflow kept in memory.

Rounds alternate the engines and take fresh cases; figures are medians of the rounds.
Afterwards one case of each persistent engine is moved `--long` steps, to show how the cost
of a step grows with the case's history (SpiffWorkflow keeps every task instance of a loop in
its task tree and serializes all of it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script, this folder comes first on sys.path and bench/transitions.py would shadow
# the `transitions` package the engine imports: put the repository there instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.transitions import NEXT, OPD, SOP_KEY, SOP_YAML  # noqa: E402

BPMN = HERE / "maju_mundur.bpmn"
PROCESS = "maju_mundur"
ROLE = "petugas"


def spiff_available() -> bool:
    try:
        import SpiffWorkflow  # noqa: F401
    except ImportError:
        return False
    return True


# ---- SpiffWorkflow --------------------------------------------------------------------------


class Spiff:
    """The BPMN process parsed once; cases as serialized workflows (or live ones)."""

    def __init__(self) -> None:
        from SpiffWorkflow.bpmn.parser import BpmnParser, BpmnValidator
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState

        parser = BpmnParser(validator=BpmnValidator())
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec(PROCESS)
        self.workflow_class = BpmnWorkflow
        self.ready = TaskState.READY
        self.serializer = BpmnWorkflowSerializer()
        self.roles = frozenset({ROLE})

    def new(self) -> Any:
        workflow = self.workflow_class(self.spec)
        workflow.do_engine_steps()
        return workflow

    def step(self, workflow: Any, roles: frozenset[str]) -> str:
        """Complete the ready user task as an actor holding `roles`; the step it was on."""
        ready = workflow.get_tasks(state=self.ready, manual=True)
        if len(ready) != 1:
            raise RuntimeError(f"expected one ready user task, found {len(ready)}")
        task = ready[0]
        spec = task.task_spec
        if spec.lane not in roles:  # the role guard: the task's lane is its role
            raise PermissionError(f"`{spec.bpmn_id}` is for `{spec.lane}`")
        step = spec.bpmn_id
        task.set_data(aksi=NEXT[step])
        task.run()
        workflow.do_engine_steps()
        return str(step)

    def persisted_step(self, stored: dict[int, str], case: int, roles: frozenset[str]) -> str:
        """Load the case's workflow, complete its ready task, save it again."""
        workflow = self.serializer.deserialize_json(stored[case])
        step = self.step(workflow, roles)
        stored[case] = self.serializer.serialize_json(workflow)
        return step


# ---- sopflow --------------------------------------------------------------------------------


class Sopflow:
    """The benchmark SOP published on a SQLite file, one user holding `petugas`."""

    def __init__(self, folder: Path) -> None:
        from engine.domain.machine import Actor, CaseFacts, compile_sop
        from engine.domain.validator import load_sop
        from engine.service.cases import fire_transition, open_case
        from engine.service.context import Context
        from engine.service.sops import publish_sop
        from engine.service.users import Principal, add_user
        from engine.store.db import make_engine
        from engine.store.migrate import upgrade

        self.engine = make_engine(f"sqlite:///{folder / 'sopflow.db'}")
        upgrade(self.engine)
        self.ctx = Context(self.engine)
        admin = Principal("bench-admin", OPD, frozenset(), admin=True)
        publish_sop(self.ctx, admin, SOP_YAML.encode())
        self.who, _token = add_user(self.ctx, "petugas-001", OPD, (ROLE,))
        self.sop = load_sop(SOP_YAML, f"{SOP_KEY}.yaml")
        self.machine = compile_sop(self.sop)
        self.actor = Actor(self.who.name, self.who.roles)
        self._open, self._fire, self._facts = open_case, fire_transition, CaseFacts

    def open(self) -> tuple[str, str]:
        case = self._open(self.ctx, self.who, SOP_KEY)
        return str(case["id"]), str(case["step"])

    def fire(self, case_id: str, step: str) -> str:
        return str(self._fire(self.ctx, self.who, case_id, NEXT[step])["step"])

    def machine_step(self, step: str) -> str:
        return self.machine.fire(self._facts(step), self.actor, NEXT[step]).to_step

    def close(self) -> None:
        self.engine.dispose()


# ---- measurement ----------------------------------------------------------------------------


@dataclass
class Timing:
    wall_us: float  # per step
    cpu_us: float


def timed(steps: int, run: Callable[[], None]) -> Timing:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Timing(wall / steps * 1e6, cpu / steps * 1e6)


def run_round(sopflow: Sopflow, spiff: Spiff, cases: int, steps: int) -> dict[str, Timing]:
    """Each engine moves `cases` fresh cases `steps` steps each, the cases taken in turn."""
    total = cases * steps
    out: dict[str, Timing] = {}

    # sopflow fire_transition on SQLite
    opened = [sopflow.open() for _ in range(cases)]
    where = {case_id: step for case_id, step in opened}

    def fire_all() -> None:
        for _ in range(steps):
            for case_id, step in where.items():
                where[case_id] = sopflow.fire(case_id, step)

    out["sopflow_fire"] = timed(total, fire_all)
    expected = "a" if steps % 2 == 0 else "b"
    assert all(step == expected for step in where.values()), where

    # SpiffWorkflow: load, step, save
    stored = {i: spiff.serializer.serialize_json(spiff.new()) for i in range(cases)}

    def spiff_all() -> None:
        for _ in range(steps):
            for i in range(cases):
                spiff.persisted_step(stored, i, spiff.roles)

    out["spiff_persist"] = timed(total, spiff_all)

    # the bare state machine step
    states = ["a"] * cases

    def machine_all() -> None:
        for _ in range(steps):
            for i in range(cases):
                states[i] = sopflow.machine_step(states[i])

    out["machine"] = timed(total, machine_all)

    # SpiffWorkflow in memory
    live = [spiff.new() for _ in range(cases)]

    def memory_all() -> None:
        for _ in range(steps):
            for workflow in live:
                spiff.step(workflow, spiff.roles)

    out["spiff_memory"] = timed(total, memory_all)
    return out


def growth(sopflow: Sopflow, spiff: Spiff, long: int, window: int = 10) -> dict[str, Any]:
    """One case of each persistent engine moved `long` steps: µs per step at the start and
    at the end, and the size of Spiff's serialized workflow at the end."""
    per_step: dict[str, list[float]] = {"sopflow_fire": [], "spiff_persist": []}
    case_id, step = sopflow.open()
    for _ in range(long):
        t = time.perf_counter()
        step = sopflow.fire(case_id, step)
        per_step["sopflow_fire"].append((time.perf_counter() - t) * 1e6)
    stored = {0: spiff.serializer.serialize_json(spiff.new())}
    for _ in range(long):
        t = time.perf_counter()
        spiff.persisted_step(stored, 0, spiff.roles)
        per_step["spiff_persist"].append((time.perf_counter() - t) * 1e6)
    return {
        "steps": long,
        "window": window,
        **{
            name: {
                "first_us": statistics.median(values[:window]),
                "last_us": statistics.median(values[-window:]),
            }
            for name, values in per_step.items()
        },
        "spiff_json_bytes_at_end": len(stored[0]),
    }


LABELS = {
    "sopflow_fire": "sopflow fire_transition (SQLite file, audit chain, commit)",
    "spiff_persist": "SpiffWorkflow load + step + save (JSON, no database)",
    "machine": "sopflow state machine step (compile_sop(sop).fire)",
    "spiff_memory": "SpiffWorkflow step in memory (no load/save)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=16, help="cases per engine and round (16)")
    parser.add_argument("--steps", type=int, default=20, help="steps per case (20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the engines (3)")
    parser.add_argument(
        "--long", type=int, default=100, help="steps of one long case, to see growth (100; 0: none)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not spiff_available():
        print("SpiffWorkflow is not installed: `.venv/bin/pip install SpiffWorkflow`")
        sys.exit(2)
    import SpiffWorkflow
    import sqlalchemy
    import transitions

    folder = Path(tempfile.mkdtemp(prefix="sopflow-bench-spiff-"))
    try:
        spiff = Spiff()
        sopflow = Sopflow(folder)
        try:
            run_round(sopflow, spiff, 2, 4)  # warm: caches, compiled SQL, the SOP parse
            rounds = []
            for r in range(args.rounds):
                timing = run_round(sopflow, spiff, args.cases, args.steps)
                rounds.append(timing)
                print(f"round {r + 1}: " + ", ".join(
                    f"{k} {t.wall_us:,.1f} µs" for k, t in timing.items()), flush=True)  # fmt: skip
            grown = growth(sopflow, spiff, args.long) if args.long > 0 else {}
        finally:
            sopflow.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def med(key: str, what: str) -> float:
        return statistics.median(getattr(r[key], what) for r in rounds)

    figures = {k: {"wall_us": med(k, "wall_us"), "cpu_us": med(k, "cpu_us")} for k in LABELS}
    ratios = {
        "sopflow_fire / spiff_persist": figures["sopflow_fire"]["wall_us"]
        / figures["spiff_persist"]["wall_us"],
        "machine / spiff_memory": figures["machine"]["wall_us"]
        / figures["spiff_memory"]["wall_us"],
        "sopflow_fire / machine": figures["sopflow_fire"]["wall_us"]
        / figures["machine"]["wall_us"],
    }
    print(
        f"\n### In-process step: sopflow and SpiffWorkflow (medians of {args.rounds} rounds; "
        f"{args.cases} cases × {args.steps} steps per engine and round)\n"
    )
    print("| engine | µs per step | CPU µs per step | µs per step, each round |")
    print("|---|---:|---:|---|")
    for key, label in LABELS.items():
        each = " / ".join(f"{r[key].wall_us:,.1f}" for r in rounds)
        print(f"| {label} | {figures[key]['wall_us']:,.1f} | {figures[key]['cpu_us']:,.1f} "
              f"| {each} |")  # fmt: skip
    print()
    for name, value in ratios.items():
        print(f"- ratio {name}: **{value:.2f}**")
    if grown:
        s, p = grown["sopflow_fire"], grown["spiff_persist"]
        print(
            f"- one case moved {grown['steps']} steps (medians of the first and last "
            f"{grown['window']}): sopflow fire_transition {s['first_us']:,.0f} → "
            f"{s['last_us']:,.0f} µs; SpiffWorkflow load + step + save {p['first_us']:,.0f} → "
            f"{p['last_us']:,.0f} µs, its JSON then {grown['spiff_json_bytes_at_end']:,} bytes"
        )
    versions = {
        "SpiffWorkflow": getattr(SpiffWorkflow, "__version__", None) or _dist("SpiffWorkflow"),
        "transitions": getattr(transitions, "__version__", "?"),
        "SQLAlchemy": sqlalchemy.__version__,
        "Python": platform.python_version(),
        "cores": os.cpu_count(),
    }
    print(f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    if args.json:
        result = {
            "cases": args.cases,
            "steps": args.steps,
            "rounds": args.rounds,
            "figures": figures,
            "each_round": [{k: t.wall_us for k, t in r.items()} for r in rounds],
            "ratios": ratios,
            "growth": grown,
            "versions": versions,
        }
        args.json.write_text(json.dumps(result, indent=2))


def _dist(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
