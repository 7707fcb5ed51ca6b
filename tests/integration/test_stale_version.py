"""A stale If-Match is answered with the case's current version and what changed since the
version the client named: a timer's escalation, another officer's payment."""

from __future__ import annotations

import pytest

from engine.service import cases, timers
from engine.service.errors import PreconditionFailed
from tests.integration.conftest import Server
from tests.integration.test_timers import World, world  # noqa: F401  (the fixture)


def test_a_transition_after_a_timer_escalation_gets_412_naming_it(
    world: World,  # noqa: F811
) -> None:
    case = world.open()
    cid = str(case["id"])
    read = cases.get_case(world.ctx, world.kasi, cid)["version"]  # what the kasi saw
    world.clock.advance(minutes=31)  # pendaftaran's 30m: warned at 75%, escalated at 100%
    assert timers.sweep(world.ctx).fired == 2
    with pytest.raises(PreconditionFailed) as stale:
        cases.fire_transition(world.ctx, world.kasi, cid, "terima", if_match=read)
    now = cases.get_case(world.ctx, world.kasi, cid)["version"]
    assert now > read
    assert stale.value.extensions["current_version"] == now
    changed = stale.value.extensions["changed"]
    assert [c["type"] for c in changed] == ["sla.warned", "sla.escalated"]
    assert all(c["actor"] is None and read < c["version"] <= now for c in changed)
    assert f'retry with If-Match: "{now}"' in stale.value.detail
    assert "sla.warned, sla.escalated" in stale.value.detail
    # the retry with the version the 412 named goes through
    moved = cases.fire_transition(world.ctx, world.kasi, cid, "terima", if_match=now)
    assert moved["step"] == "pemeriksaan"


def test_412_over_http_is_problem_json_with_current_version_and_changes(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    kasir_name = f"kasir-{office.opd}"
    kasir = office.staff("loket", name=kasir_name)
    case = office.open_case(loket)
    paid = kasir.post(f"/api/v1/cases/{case['id']}/payments", json={"amount": 50000,
                      "method": "cash"})  # fmt: skip
    assert paid.status_code == 201, paid.text
    answer = loket.post(
        f"/api/v1/cases/{case['id']}/transitions",
        json={"name": "terima"},
        headers={"If-Match": f'"{case["version"]}"'},
    )
    assert answer.status_code == 412
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    body = answer.json()
    current = loket.get(f"/api/v1/cases/{case['id']}").json()["version"]
    assert body["current_version"] == current > case["version"]
    assert [(c["type"], c["actor"]) for c in body["changed"]] == [
        ("case.payment_recorded", kasir_name)
    ]
    assert body["changed"][0]["at"].endswith("Z")
