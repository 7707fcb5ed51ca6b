"""The case aggregate's rules, with no database and no clock (engine.domain.case).

A 24x7 calendar keeps the arithmetic plain: working time is wall time, so every instant
here is worked out by hand. (Working-time calendars are tests/test_sla.py's.)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engine.domain import case as rules
from engine.domain.machine import Fired
from engine.domain.model import SOP
from engine.domain.validator import load_sop

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SOURCE = """
sop: uji-aturan
version: 1
opd: dinas-uji
title: Uji aturan perkara
service_time: 10h
calendar: 24x7
roles: {loket: Petugas Loket, kasi: Kepala Seksi, kadis: Kepala Dinas}
steps:
  - {id: periksa, name: Pemeriksaan, role: loket, sla: 4h}
  - {id: tunggu, name: Menunggu pemohon, clock: paused}
  - {id: bebas, name: Tanpa tangga, role: loket, sla: 2h, escalation: []}
  - {id: selesai, name: Selesai, final: true, outcome: completed}
transitions:
  - {name: kembalikan, from: periksa, to: tunggu}
  - {name: lengkapi, from: tunggu, to: periksa, role: loket}
  - {name: lanjut, from: periksa, to: bebas}
  - {name: terima, from: bebas, to: selesai}
escalation:
  - {at: 50%, action: warn}
  - {at: 100%, action: escalate, to: kasi}
  - {at: 200%, action: escalate, to: kadis, flag: inspectorate}
"""


@pytest.fixture(scope="module")
def sop() -> SOP:
    return load_sop(SOURCE)


def fired(sop: SOP, name: str) -> Fired:
    t = next(t for t in sop.transitions if t.name == name)
    to = sop.step(t.dest)
    return Fired(name, t.sources[0], to.id, to.final, to.outcome, to.paused)


def visit_of(state: rules.CaseState, paused: bool = False) -> rules.Visit:
    return rules.Visit(state.step, state.step_entered_at, paused)


def test_opening_starts_the_service_clock_and_schedules_the_ladder(sop: SOP) -> None:
    d = rules.open_case(sop, sop.calendar, T0, "budi")
    assert d.state.step == "periksa" and d.state.step_role == "loket"
    assert d.state.step_due_at == T0 + timedelta(hours=4)
    assert d.state.service_due_at == T0 + timedelta(hours=10)
    assert d.of(rules.StepEntered) == [
        rules.StepEntered("periksa", "loket", False, T0, "budi", T0 + timedelta(hours=4))
    ]
    assert [(r.index, r.due, r.action, r.to_role, r.flag) for r in d.of(rules.RungScheduled)] == [
        (0, T0 + timedelta(hours=2), "warn", None, None),
        (1, T0 + timedelta(hours=4), "escalate", "kasi", None),
        (2, T0 + timedelta(hours=8), "escalate", "kadis", "inspectorate"),
    ]
    assert d.of(rules.ServiceTimerScheduled) == [
        rules.ServiceTimerScheduled(T0 + timedelta(hours=10))
    ]
    assert isinstance(d.events[-1], rules.Opened)


def test_pausing_freezes_the_service_clock_and_voids_its_timer(sop: SOP) -> None:
    opened = rules.open_case(sop, sop.calendar, T0, "budi").state
    at = T0 + timedelta(hours=1)
    d = rules.fire(
        sop, sop.calendar, opened, visit_of(opened), fired(sop, "kembalikan"), at, "budi"
    )
    s = d.state
    assert s.paused_since == at and s.service_due_at is None
    assert s.service_due_frozen == T0 + timedelta(hours=10)
    assert s.step_due_at is None  # a paused step has no time standard
    kinds = [type(e) for e in d.events]
    assert kinds[:3] == [rules.RungsCancelled, rules.ServiceTimerCancelled, rules.StepLeft]
    left = d.of(rules.StepLeft)[0]
    assert (left.dwell_seconds, left.working_seconds, left.via) == (3600, 3600, "kembalikan")
    assert not d.of(rules.RungScheduled)  # waiting on the citizen: no ladder


def test_resuming_moves_the_service_deadline_by_the_time_waited(sop: SOP) -> None:
    opened = rules.open_case(sop, sop.calendar, T0, "budi").state
    paused = rules.fire(sop, sop.calendar, opened, visit_of(opened), fired(sop, "kembalikan"),
                        T0 + timedelta(hours=1), "budi").state  # fmt: skip
    back = T0 + timedelta(hours=4)  # three hours waiting on the citizen
    d = rules.fire(sop, sop.calendar, paused, visit_of(paused, paused=True),
                   fired(sop, "lengkapi"), back, "budi")  # fmt: skip
    s = d.state
    assert s.paused_since is None and s.service_due_frozen is None
    assert s.paused_seconds == 3 * 3600
    assert s.service_due_at == T0 + timedelta(hours=13)
    assert d.of(rules.ServiceTimerScheduled) == [rules.ServiceTimerScheduled(s.service_due_at)]
    assert d.of(rules.StepLeft)[0].paused  # the time waited is counted as the citizen's
    assert not d.of(rules.RungsCancelled)  # a paused step had no rungs to void
    assert len(d.of(rules.RungScheduled)) == 3


def test_a_step_without_a_ladder_schedules_no_rungs_and_keeps_the_service_timer(sop: SOP) -> None:
    opened = rules.open_case(sop, sop.calendar, T0, "budi").state
    d = rules.fire(sop, sop.calendar, opened, visit_of(opened), fired(sop, "lanjut"),
                   T0 + timedelta(minutes=30), "budi")  # fmt: skip
    assert d.state.step_due_at == T0 + timedelta(hours=2, minutes=30)
    assert not d.of(rules.RungScheduled) and not d.of(rules.ServiceTimerCancelled)
    assert d.of(rules.RungsCancelled) == [rules.RungsCancelled("periksa")]


def test_closing_ends_the_case_and_voids_every_timer(sop: SOP) -> None:
    opened = rules.open_case(sop, sop.calendar, T0, "budi").state
    free = rules.fire(sop, sop.calendar, opened, visit_of(opened), fired(sop, "lanjut"),
                      T0 + timedelta(hours=1), "budi").state  # fmt: skip
    free = replace(free, decision_due_at=T0 + timedelta(days=3))
    end = T0 + timedelta(hours=2)
    d = rules.fire(sop, sop.calendar, free, visit_of(free), fired(sop, "terima"), end, "sari")
    s = d.state
    assert (s.status, s.outcome, s.closed_at, s.step) == ("closed", "completed", end, "selesai")
    assert s.fired_by == {"lanjut": ("budi",), "terima": ("sari",)}
    assert not d.of(rules.StepEntered)  # a final step is no visit
    assert d.of(rules.ServiceTimerCancelled) and d.of(rules.DecisionTimerCancelled)
    assert [type(e) for e in d.events[-2:]] == [rules.Transitioned, rules.Closed]
    records = [rules.audit_record(e) for e in d.events]
    assert [r.type for r in records if r] == ["case.transitioned", "case.closed"]


def test_escalation_adds_the_role_raises_the_level_and_flags(sop: SOP) -> None:
    s = rules.open_case(sop, sop.calendar, T0, "budi").state
    warn = rules.Rung(0, "warn", T0 + timedelta(hours=2))
    d = rules.fire_rung(sop, s, warn, T0 + timedelta(hours=2, seconds=1))
    assert d.state == s and d.events[0] == rules.Warned(0, "50%", "periksa", "loket",
                                                         warn.due, 1.0, None)  # fmt: skip
    kasi = rules.Rung(1, "escalate", T0 + timedelta(hours=4), "kasi")
    s = rules.fire_rung(sop, s, kasi, T0 + timedelta(hours=4)).state
    assert (s.escalation_level, s.extra_roles, s.flags) == (1, ("kasi",), ())
    kadis = rules.Rung(2, "escalate", T0 + timedelta(hours=8), "kadis", "inspectorate")
    d = rules.fire_rung(sop, s, kadis, T0 + timedelta(hours=8))
    assert (d.state.escalation_level, d.state.extra_roles) == (2, ("kasi", "kadis"))
    assert d.state.flags == ("inspectorate",)
    record = rules.audit_record(d.events[0])
    assert record is not None and record.type == "sla.escalated" and not record.staff_act
    assert record.data["to"] == "kadis" and record.data["flag"] == "inspectorate"
    # entering a step starts its escalation afresh
    moved = rules.fire(sop, sop.calendar, d.state, visit_of(d.state), fired(sop, "lanjut"),
                       T0 + timedelta(hours=9), "budi").state  # fmt: skip
    assert moved.escalation_level == 0 and moved.extra_roles == ("kasi", "kadis")


def test_the_service_breach_flags_once_and_deemed_approval_sets_the_decision_deadline() -> None:
    deemed = load_sop(SOURCE.replace("service_time: 10h", "service_time: 10h\n"
                                     "deemed_approval: true\ndecision_time: 5h"))  # fmt: skip
    s = rules.open_case(deemed, deemed.calendar, T0, "budi").state
    due = T0 + timedelta(hours=10)
    d = rules.fire_rung(deemed, s, rules.Rung(rules.SERVICE_RUNG, "service", due), due)
    assert d.state.flags == ("service_time_breached", "deemed_approved")
    assert d.state.deemed_approved_at == due  # by law from the deadline, not the sweep
    assert d.state.decision_due_at == due + timedelta(hours=5)
    assert d.of(rules.DecisionTimerScheduled) == [
        rules.DecisionTimerScheduled(due + timedelta(hours=5), "kadis", "inspectorate")
    ]
    late = rules.fire_rung(deemed, d.state, rules.Rung(rules.DECISION_RUNG, "decision",
                           due + timedelta(hours=5)), due + timedelta(hours=6))  # fmt: skip
    assert late.state.flags == ("service_time_breached", "deemed_approved", "decision_overdue",
                                "inspectorate")  # fmt: skip
    assert late.state.extra_roles == ("kadis",) and late.state.escalation_level == 1
    overdue = late.of(rules.DecisionOverdue)[0]
    assert overdue.lateness == 3600.0 and overdue.to == "kadis"
