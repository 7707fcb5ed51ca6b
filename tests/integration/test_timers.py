"""SLA clocks and the timer sweep, on both databases, with a clock the test moves."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.service import cases, queries, timers
from engine.service.context import Context
from engine.service.notifications import deliver_webhooks, inbox, set_webhook
from engine.service.sops import publish_sop
from engine.service.users import Principal, add_user
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from engine.store.tables import SlaFiring, SlaTimer
from tests.integration.conftest import TEST_SOP

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    ctx: Context
    clock: Clock
    opd: str
    sop: str
    loket: Principal
    kasi: Principal
    inspector: Principal

    def open(self) -> dict[str, object]:
        return cases.open_case(
            self.ctx, self.loket, self.sop, fields={"nik": "3201234567890001", "nama": "Ani"},
            received=["ktp"],
        )  # fmt: skip

    def events(self, case_id: str, prefix: str = "sla.") -> list[dict[str, object]]:
        history = queries.case_history(self.ctx, self.inspector, case_id)
        return [e for e in history if str(e["type"]).startswith(prefix)]


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    url = (
        f"sqlite:///{tmp_path / 't.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("own_postgres_url")
    )
    engine = make_engine(url)
    upgrade(engine)
    clock = Clock()
    ctx = Context(engine, clock)
    suffix = request.node.name[-40:].replace("[", "-").replace("]", "").replace("_", "-")
    opd, sop = f"t-{abs(hash(suffix)) % 10**8}", f"izin-{abs(hash(suffix)) % 10**8}"
    text = TEST_SOP.read_text().replace("sop: surat-izin", f"sop: {sop}")
    text = text.replace("opd: dinas-uji", f"opd: {opd}")
    admin, _ = add_user(ctx, f"admin-{opd}", opd=opd, admin=True)
    publish_sop(ctx, admin, text.encode())
    loket, _ = add_user(ctx, f"loket-{opd}", opd=opd, roles=("loket",))
    kasi, _ = add_user(ctx, f"kasi-{opd}", opd=opd, roles=("kasi",))
    add_user(ctx, f"kadis-{opd}", opd=opd, roles=("kadis",))
    inspector, _ = add_user(ctx, f"insp-{opd}", inspector=True)
    yield World(ctx, clock, opd, sop, loket, kasi, inspector)
    engine.dispose()


def test_each_rung_fires_once_when_due_and_not_before(world: World) -> None:
    case = world.open()
    # pendaftaran: sla 30m on 24x7 -> warn at 22m30s, kasi at 30m, kadis at 60m
    world.clock.advance(minutes=22)
    assert timers.sweep(world.ctx).fired == 0
    world.clock.advance(seconds=31)
    assert timers.sweep(world.ctx).fired == 1
    world.clock.advance(minutes=8)
    assert timers.sweep(world.ctx).fired == 1
    world.clock.advance(minutes=30)
    assert timers.sweep(world.ctx).fired == 1
    assert timers.sweep(world.ctx).fired == 0  # nothing fires twice
    events = world.events(str(case["id"]))
    rungs = [(e["type"], e["data"]["at"]) for e in events if e["type"] != "sla.service_breached"]  # type: ignore[index]
    assert rungs == [("sla.warned", "75%"), ("sla.escalated", "100%"), ("sla.escalated", "200%")]
    warned = events[0]["data"]
    assert warned["due_at"] == (T0 + timedelta(minutes=22, seconds=30)).isoformat()  # type: ignore[index]
    assert warned["lateness_seconds"] == 1.0  # type: ignore[index]
    now = cases.get_case(world.ctx, world.kasi, str(case["id"]))
    assert now["escalation_level"] == 2
    assert "inspectorate" in now["flags"]
    # escalated to kasi: the kasi may now act on a step that is the loket's
    assert now["allowed_transitions"] == ["terima", "kembalikan"]


def test_warn_and_escalate_reach_the_right_inboxes(world: World) -> None:
    world.open()
    world.clock.advance(minutes=31)
    timers.sweep(world.ctx)
    loket_inbox = inbox(world.ctx, world.loket)["items"]
    kasi_inbox = inbox(world.ctx, world.kasi)["items"]
    assert [n["kind"] for n in loket_inbox] == ["sla.warned"]
    assert [n["kind"] for n in kasi_inbox] == ["sla.escalated"]
    assert "escalated to you" in kasi_inbox[0]["message"]


def test_leaving_a_step_cancels_its_rungs(world: World) -> None:
    case = world.open()
    world.clock.advance(minutes=10)
    cases.fire_transition(world.ctx, world.loket, str(case["id"]), "terima")
    world.clock.advance(minutes=59)  # past every rung of pendaftaran, before pemeriksaan's
    timers.sweep(world.ctx)
    assert [e["data"]["step"] for e in world.events(str(case["id"]))] == ["pemeriksaan"]  # type: ignore[index]


def test_a_paused_case_never_escalates_and_its_service_clock_stops(world: World) -> None:
    case = world.open()
    cid = str(case["id"])
    assert case["service_due_at"] == T0 + timedelta(hours=2)
    world.clock.advance(minutes=10)
    paused = cases.fire_transition(world.ctx, world.loket, cid, "kembalikan", comment="KK kurang")
    assert paused["step_due_at"] is None and paused["service_due_at"] is None
    world.clock.advance(days=3)
    assert timers.sweep(world.ctx).fired == 0
    back = cases.fire_transition(world.ctx, world.loket, cid, "lengkapi")
    # the service deadline moved later by exactly the three days spent waiting
    assert back["service_due_at"] == T0 + timedelta(hours=2, days=3)
    assert world.events(cid) == []


def test_a_breached_service_time_is_recorded_once(world: World) -> None:
    case = world.open()
    world.clock.advance(hours=2, seconds=5)
    timers.sweep(world.ctx)
    timers.sweep(world.ctx)
    breaches = world.events(str(case["id"]), "sla.service_breached")
    assert len(breaches) == 1
    assert breaches[0]["data"]["lateness_seconds"] == 5.0  # type: ignore[index]
    assert (
        "service_time_breached" in cases.get_case(world.ctx, world.loket, str(case["id"]))["flags"]
    )


def test_overdue_cases_are_listed(world: World) -> None:
    late = world.open()
    world.clock.advance(minutes=20)
    on_time = world.open()
    world.clock.advance(minutes=15)
    overdue = queries.list_cases(world.ctx, world.loket, overdue=True)["items"]
    assert [c["id"] for c in overdue] == [late["id"]]
    assert on_time["id"] not in [c["id"] for c in overdue]


def test_two_sweepers_at_once_fire_each_rung_exactly_once(world: World) -> None:
    opened = [world.open() for _ in range(40)]
    world.clock.advance(hours=3)  # every rung of every case is due: 3 rungs + service each
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        counts.append(timers.sweep(world.ctx, batch=7).fired)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 4 * len(opened)
    with world.ctx.uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(SlaTimer)).scalar_one() == 0
        firings = uow.session.execute(select(func.count()).select_from(SlaFiring)).scalar_one()
    assert firings == 4 * len(opened)
    assert queries.verify_trail(world.ctx, world.inspector)["ok"] is True


def test_a_rung_whose_timer_outlived_its_firing_fires_once(world: World) -> None:
    """Two sweepers reach the same due rung: the first fired it and recorded its firing,
    then died before its timer row was removed; the second finds the row still due."""
    case = world.open()
    cid = str(case["id"])
    world.clock.advance(minutes=31)  # the warning (22m30s) and the kasi's rung (30m) are due
    table = SlaTimer.__table__  # type: ignore[attr-defined]
    with world.ctx.uow() as uow:
        due = [dict(r) for r in uow.session.execute(
            select(table).where(table.c.due_at <= world.clock.now)).mappings()]  # fmt: skip
    assert len(due) == 2
    assert timers.sweep(world.ctx).fired == 2
    fired = world.events(cid)
    notes = len(inbox(world.ctx, world.kasi)["items"])
    # the first sweeper's kill, replayed: its firings are recorded, its timer rows are back
    with world.ctx.uow() as uow:
        uow.session.execute(table.insert(), due)
        uow.commit()
    second = timers.sweep(world.ctx)
    assert second.fired == 0 and second.deliveries == []
    assert world.events(cid) == fired  # one event per rung, not two
    assert [e["type"] for e in fired] == ["sla.warned", "sla.escalated"]
    assert len(inbox(world.ctx, world.kasi)["items"]) == notes
    assert cases.get_case(world.ctx, world.kasi, cid)["escalation_level"] == 1
    with world.ctx.uow() as uow:
        keys = [t["key"] for t in due]
        count = select(func.count()).select_from(SlaFiring)
        assert uow.session.execute(count.where(SlaFiring.key.in_(keys))).scalar_one() == 2  # type: ignore[attr-defined]
        left = select(func.count()).select_from(SlaTimer).where(SlaTimer.key.in_(keys))  # type: ignore[attr-defined]
        assert uow.session.execute(left).scalar_one() == 0  # the stale rows are gone
    assert queries.verify_trail(world.ctx, world.inspector)["ok"] is True


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver that fails the first `failures` posts."""

    received: list[dict[str, object]] = []
    failures = 0

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Hook.failures > 0:
            Hook.failures -= 1
            self.send_response(503)
        else:
            Hook.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_sla_events_reach_the_office_webhook_with_retries(world: World) -> None:
    receiver = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Hook.received, Hook.failures = [], 1
    try:
        url = f"http://127.0.0.1:{receiver.server_port}/sla"
        set_webhook(world.ctx, world.opd, url, allow_private=True)
        case = world.open()
        world.clock.advance(minutes=23)
        assert len(timers.sweep(world.ctx).deliveries) == 1
        deliver = partial(deliver_webhooks, world.ctx, allow_private=True)
        assert deliver() == 0  # the receiver is down the first time
        assert deliver() == 0  # and the retry waits its turn
        world.clock.advance(seconds=3)
        assert deliver() == 1
        (posted,) = Hook.received
        assert (posted["type"], posted["case_id"]) == ("sla.warned", case["id"])
        assert deliver() == 0  # delivered once
    finally:
        receiver.shutdown()
        receiver.server_close()
