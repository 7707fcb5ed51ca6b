"""`sopflow demo`: a simulated week names exactly the planted officers, a clean one nobody.

Each test simulates a whole working week on a fresh database through the service layer
(about 20-30 s each on SQLite). Seeds are fixed: the simulation is deterministic per seed.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from engine.service import anomalies, timers
from engine.service.context import Context
from engine.service.users import Principal
from engine.store.migrate import upgrade
from engine.store.tables import AuditEvent
from sopflow import demo
from sopflow.cli import main

# besides demo.DEFAULT_SEED, which the command-line test runs; in week 2 the holder keeps
# a pile of files at one desk and is slow, not clearly a holder, at another, where the
# quick colleague beside him seemed to overtake his files
OTHER_SEEDS = (3, 8, 2)
KINDS = ("fee_mismatch", "queue_jumping", "holding_outlier")
CONDUCTS = (*KINDS, *demo.LEVY_CONDUCTS)  # the levy desk's two: both show as fee_mismatch


def seed_range(text: str) -> list[int]:
    """`1-25` or `3,8`: the seeds SOPFLOW_DEMO_SEEDS asks for."""
    out: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        out += list(range(int(low), int(high or low) + 1))
    return out


# SOPFLOW_DEMO_SEEDS=1-25 runs the levy check over 25 weeks (about 30 s a week)
LEVY_SEEDS = seed_range(os.environ.get("SOPFLOW_DEMO_SEEDS", "") or "5-6")
STAFF_ACTS = ("case.created", "case.transitioned", "case.received", "case.payment_recorded")
INSPECTOR = Principal("inspektorat-uji", None, frozenset(), inspector=True)


def found(engine: Engine, at: datetime) -> list[dict[str, Any]]:
    """The anomaly report over the whole database, read at the end of the simulated week."""
    return list(anomalies.anomalies(Context(engine, lambda: at), INSPECTOR)["items"])


def week(url: str, seed: int, planted: bool) -> tuple[demo.Simulation, list[dict[str, Any]]]:
    """A simulated week on a fresh database at `url`, and its anomaly report."""
    engine = demo.demo_engine(url)
    try:
        upgrade(engine)
        sim = demo.simulate(Context(engine), demo.WORKFLOWS, seed=seed, planted=planted)
        assert sim.ended is not None
        check_clean_conduct(engine, sim)
        return sim, found(engine, sim.ended)
    finally:
        engine.dispose()


def check_clean_conduct(engine: Engine, sim: demo.Simulation) -> None:
    """What every simulated week must do besides the planted abuses."""
    assert sim.cases > 200 and sim.transitions > 3 * sim.cases  # a busy week
    assert sim.returns > 0 and sim.rejections > 0 and sim.completed > 0 and sim.rungs_fired > 0
    assert set(sim.by_sop) == {path.stem for path in demo.WORKFLOWS.glob("*.yaml")}
    with Context(engine).reader() as uow:
        events = uow.session.execute(
            select(AuditEvent.type, AuditEvent.data).where(AuditEvent.type.in_(STAFF_ACTS))  # type: ignore[attr-defined]
        ).all()
    assert len(events) > sim.transitions
    # nobody acts outside working hours, and every levy is the tariff (the fee-taker aside)
    assert not [data for _type, data in events if data.get("off_hours")]
    wrong = [d for t, d in events if t == "case.payment_recorded" and d["fee_mismatch"]]
    assert len(wrong) == sim.extra_payments


def named(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(item["kind"], item["actor"]) for item in items if item["actor"]}


def planted_as(sim: demo.Simulation) -> set[tuple[str, str]]:
    """(anomaly kind, officer) that each planted officer must be found as."""
    return {(demo.FOUND_AS.get(conduct, conduct), o) for conduct, o in sim.planted.items()}


def assert_exactly_planted(sim: demo.Simulation, items: list[dict[str, Any]]) -> None:
    """Each planted officer under his own kind, and no item of any kind naming anyone else."""
    assert set(sim.planted) == set(CONDUCTS)
    assert len(set(sim.planted.values())) == len(CONDUCTS)  # distinct officers
    assert named(items) == planted_as(sim), [(i["kind"], i["actor"], i["detail"]) for i in items]
    assert all(item["actor"] for item in items)


@pytest.mark.parametrize("seed", OTHER_SEEDS)
def test_a_planted_week_names_exactly_the_planted_officers(tmp_path: Path, seed: int) -> None:
    sim, items = week(f"sqlite:///{tmp_path / 'demo.db'}", seed, planted=True)
    assert_exactly_planted(sim, items)
    assert sim.extra_payments > 0


@pytest.mark.parametrize("seed", LEVY_SEEDS)
def test_levy_abuses_are_found_and_honest_levy_cases_accuse_nobody(
    tmp_path: Path, seed: int
) -> None:
    sim, items = week(f"sqlite:///{tmp_path / 'demo.db'}", seed, planted=True)
    assert sim.bills > 0 and sim.payments > 0  # honest levy cases billed and paid
    levy = {(demo.FOUND_AS[c], sim.planted[c]) for c in demo.LEVY_CONDUCTS}
    assert len({officer for _kind, officer in levy}) == 2
    fee = {(i["kind"], i["actor"]) for i in items if i["kind"] == "fee_mismatch"}
    assert levy <= fee, [(i["actor"], i["detail"]) for i in items]  # both found
    assert fee <= planted_as(sim), [(i["actor"], i["detail"]) for i in items]  # nobody else
    unbilled = next(i for i in items if i["actor"] == sim.planted["levy_unbilled"])
    assert "before any bill was issued" in unbilled["detail"]


@pytest.mark.parametrize("seed", (demo.DEFAULT_SEED, OTHER_SEEDS[0]))
def test_a_clean_week_accuses_nobody(tmp_path: Path, seed: int) -> None:
    sim, items = week(f"sqlite:///{tmp_path / 'demo.db'}", seed, planted=False)
    assert sim.planted == {}
    assert not [i for i in items if i["kind"] in ("queue_jumping", "holding_outlier")]
    assert not [(i["kind"], i["actor"], i["detail"]) for i in items if i["actor"]]
    assert sim.extra_payments == 0


@pytest.mark.postgres
def test_a_planted_week_on_postgres(own_postgres_url: str) -> None:
    sim, items = week(own_postgres_url, OTHER_SEEDS[1], planted=True)
    assert_exactly_planted(sim, items)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sopflow_demo_prints_the_planted_officers_and_how_to_serve(in_tmp: Path) -> None:
    (in_tmp / "sopflow-demo.db").write_text("an old demo")
    result = CliRunner().invoke(main, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    database = (in_tmp / "sopflow-demo.db").resolve()
    assert f"Replacing the existing {database}" in out
    # the serve line runs as printed (no venv on PATH needed), on the port the curl lines use
    serve = next(line.split() for line in out.splitlines() if " serve --port " in line)
    assert serve[0] == f"SOPFLOW_DATABASE_URL=sqlite:///{database}"
    assert Path(serve[1]).is_absolute() and Path(serve[1]).is_file(), serve
    port = serve[-1]
    assert port.isdigit() and port != "8000"
    assert f"http://127.0.0.1:{port}/api/v1/reports/anomalies" in out
    assert f"http://127.0.0.1:{port}/api/v1/reports/bottlenecks?sop=" in out
    assert "BOTTLENECKS" in out and "ANOMALIES" in out
    token = out.split("token (shown once): ", 1)[1].split()[0]
    assert f"Bearer {token}" in out

    # the file it leaves is the week it printed: the planted officers, and only they
    engine = demo.demo_engine(f"sqlite:///{database}")
    try:
        with Context(engine).reader() as uow:
            last = uow.session.execute(
                select(AuditEvent.at).order_by(AuditEvent.seq.desc()).limit(1)  # type: ignore[attr-defined]
            ).scalar_one()
        items = found(engine, last)
        # the week's clocks stopped with it: opened later, nothing stale fires
        assert timers.sweep(Context(engine)).fired == 0
    finally:
        engine.dispose()
    # each officer the Planted line names, found under the kind his conduct shows as
    line = next(line for line in out.splitlines() if line.startswith("Planted: "))
    planted = {
        (demo.FOUND_AS.get(conduct, conduct), name)
        for conduct in CONDUCTS
        for name in {i["actor"] for i in items}
        if f"{name} ({demo.PLANTED_AS[conduct]})" in line
    }
    assert len(planted) == len(CONDUCTS), out
    assert len({name for _kind, name in planted}) == len(CONDUCTS)
    assert named(items) == planted, out  # nobody else, under any kind
