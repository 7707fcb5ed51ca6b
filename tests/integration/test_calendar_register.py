"""The calendar register over the API: decrees as data, and running deadlines that follow.

The server runs on a database of its own: a sweep here, on a clock the test moves, fires
every timer that falls due, and a holiday here moves every open case it touches.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from engine.service import queries, timers
from engine.service.context import Context
from engine.service.users import add_user
from tests.integration.conftest import Office, Server, server_of_its_own

WIB = ZoneInfo("Asia/Jakarta")


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def own_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from server_of_its_own(request.param, tmp_path_factory.mktemp("calendar"), {})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def working_office(server: Server) -> Office:
    """An office whose SOP runs on id-working: a one-day step and a three-day service."""
    office = server.office(publish=False)
    text = office.sop_text().replace("calendar: 24x7", "calendar: id-working")
    text = text.replace("sla: 30m}", "sla: 1d}", 1).replace("service_time: 2h", "service_time: 3d")
    assert office.publish(text).status_code == 201
    return office


def at(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def history(server: Server, case_id: str) -> list[dict[str, object]]:
    inspector, _ = add_user(server.ctx, f"insp-{secrets.token_hex(4)}", inspector=True)
    return list(queries.case_history(server.ctx, inspector, case_id))


def rescheduled(server: Server, case_id: str) -> list[dict[str, object]]:
    return [e for e in history(server, case_id) if e["type"] == "sla.rescheduled"]


def escalations(server: Server, case_id: str) -> list[dict[str, object]]:
    return [e for e in history(server, case_id) if e["type"] == "sla.escalated"]


def test_a_holiday_moves_a_waiting_case_and_its_rung_fires_at_the_new_instant(
    own_server: Server,
) -> None:
    office = working_office(own_server)
    loket = office.staff("loket")
    keeper = own_server.client(f"cal-{office.opd}", opd=office.opd, calendar_admin=True)
    case = office.open_case(loket)
    old_due = at(case["step_due_at"])
    old_service = at(case["service_due_at"])
    # the day the step falls due is inside the case's window: a regent's decree closes it
    holiday = old_due.astimezone(WIB).date()
    reason = "Keputusan Bupati 7/2026 tentang Hari Jadi Kabupaten"
    added = keeper.post(
        "/api/v1/calendar/days",
        json={"date": holiday.isoformat(), "reason": reason, "opd": office.opd},
    )
    assert added.status_code == 201, added.text
    assert added.json()["rescheduled"] >= 1
    moved = loket.get(f"/api/v1/cases/{case['id']}").json()
    new_due = at(moved["step_due_at"])
    # the same clock time on the next working day after the holiday
    assert new_due > old_due and new_due.astimezone(WIB).date() > holiday
    assert new_due.astimezone(WIB).time() == old_due.astimezone(WIB).time()
    assert at(moved["service_due_at"]) > old_service
    events = rescheduled(own_server, str(case["id"]))
    step_moves = [e["data"] for e in events if e["data"]["clock"] == "step"]  # type: ignore[index]
    assert step_moves == [
        {"old_due_at": old_due.isoformat(), "new_due_at": new_due.isoformat(),
         "reason": reason, "clock": "step"}
    ]  # fmt: skip
    # the register shows it, with its reason, to everyone
    public = httpx.get(
        f"{own_server.base_url}/public/calendar/{holiday.year}", params={"opd": office.opd}
    ).json()
    assert {"date": holiday.isoformat(), "reason": reason, "status": "decreed"}.items() <= next(
        i for i in public["items"] if i["date"] == holiday.isoformat() and i["opd"]
    ).items()

    # removing the holiday moves it back
    removed = keeper.post(
        "/api/v1/calendar/removals",
        json={"date": holiday.isoformat(), "reason": "Keputusan Bupati 8/2026", "opd": office.opd},
    )
    assert removed.status_code == 200, removed.text
    back = loket.get(f"/api/v1/cases/{case['id']}").json()
    assert at(back["step_due_at"]) == old_due
    assert at(back["service_due_at"]) == old_service
    assert len(rescheduled(own_server, str(case["id"]))) == len(events) + 2

    # added again: the escalation rung fires at the new instant, not the old
    assert keeper.post(
        "/api/v1/calendar/days",
        json={"date": holiday.isoformat(), "reason": reason, "opd": office.opd},
    ).status_code == 201
    clock = Clock(old_due + timedelta(minutes=1))
    ctx = Context(own_server.ctx.engine, clock)
    timers.sweep(ctx)
    assert escalations(own_server, str(case["id"])) == []
    clock.now = new_due + timedelta(minutes=1)
    timers.sweep(ctx)
    fired = escalations(own_server, str(case["id"]))
    assert [(e["data"]["at"], at(e["data"]["due_at"])) for e in fired] == [("100%", new_due)]  # type: ignore[index]

    # a rung that fired stays fired: taking the holiday away moves the step's due back, and
    # the 100% rung does not fire again (the pending 200% rung moves back with it)
    keeper.post(
        "/api/v1/calendar/removals",
        json={"date": holiday.isoformat(), "reason": "Keputusan Bupati 9/2026", "opd": office.opd},
    )
    timers.sweep(ctx)
    labels = [e["data"]["at"] for e in escalations(own_server, str(case["id"]))]  # type: ignore[index]
    assert labels.count("100%") == 1


def test_another_office_keeps_its_deadlines(own_server: Server) -> None:
    ours, theirs = working_office(own_server), working_office(own_server)
    keeper = own_server.client(f"cal-{ours.opd}", opd=ours.opd, calendar_admin=True)
    case = theirs.open_case(theirs.staff("loket"))
    holiday = at(case["step_due_at"]).astimezone(WIB).date()
    body = {"date": holiday.isoformat(), "reason": "Keputusan Bupati 1/2026", "opd": ours.opd}
    assert keeper.post("/api/v1/calendar/days", json=body).status_code == 201
    same = theirs.staff("loket").get(f"/api/v1/cases/{case['id']}").json()
    assert same["step_due_at"] == case["step_due_at"]
    # and an office's calendar administrator keeps only that office's calendar
    body["opd"] = theirs.opd
    refused = keeper.post("/api/v1/calendar/days", json=body)
    assert refused.status_code == 403
    assert refused.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/calendar/days", {"date": "2026-13-01", "reason": "x"}),
        ("/api/v1/calendar/days", {"date": "2026-12-01", "reason": ""}),
        ("/api/v1/calendar/days", {"date": "2026-12-01", "until": "2026-11-01", "reason": "x"}),
        ("/api/v1/calendar/ramadan/2027", {"from": "2027-02-08", "to": "2027-02-20", "reason": "a"}),  # noqa: E501
        ("/api/v1/calendar/removals", {"date": "2026-12-02", "reason": "x"}),
    ],
)
def test_bad_changes_are_refused_in_plain_words(
    own_server: Server, path: str, body: dict[str, object]
) -> None:
    keeper = own_server.client(f"cal-{secrets.token_hex(4)}", calendar_admin=True)
    method = keeper.put if "ramadan" in path else keeper.post
    response = method(path, json=body)
    assert response.status_code in (404, 422), response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_healthz_names_the_years_and_ramadan_fixed_by_decree_counts(own_server: Server) -> None:
    body = httpx.get(f"{own_server.base_url}/healthz").json()
    today = datetime.now(UTC).date()
    years = body["calendar"]["years"]
    assert set(years) == {str(today.year), str(today.year + 1)}
    assert body["calendar"]["status"] in ("ok", "estimated")
    keeper = own_server.client(f"cal-{secrets.token_hex(4)}", calendar_admin=True)
    year = today.year + 1
    first = [i for i in httpx.get(f"{own_server.base_url}/public/calendar/{year}").json()["items"]
             if i["kind"] == "ramadan"][0]  # fmt: skip
    assert first["status"] == "estimated"
    start = date.fromisoformat(first["date"])
    body2 = {"from": start.isoformat(), "to": (start + timedelta(days=29)).isoformat(),
             "reason": "Sidang isbat Kementerian Agama"}  # fmt: skip
    assert keeper.put(f"/api/v1/calendar/ramadan/{year}", json=body2).status_code == 200
    after = httpx.get(f"{own_server.base_url}/healthz").json()["calendar"]["years"][str(year)]
    assert after["ramadan"] == "decreed"
    staff = own_server.office().staff("loket")
    assert staff.put(f"/api/v1/calendar/ramadan/{year}", json=body2).status_code == 403


def test_the_register_is_not_for_staff_or_the_anonymous(own_server: Server) -> None:
    office = own_server.office()
    body = {"date": "2026-12-01", "reason": "x", "opd": office.opd}
    assert office.admin.post("/api/v1/calendar/days", json=body).status_code == 403
    anonymous = httpx.post(f"{own_server.base_url}/api/v1/calendar/days", json=body)
    assert anonymous.status_code == 401


def test_a_case_due_in_an_estimated_year_says_so_until_the_decree_is_recorded(
    own_server: Server,
) -> None:
    office = working_office(own_server)
    loket = office.staff("loket")
    case = office.open_case(loket)
    year = at(case["service_due_at"]).astimezone(WIB).year
    health = httpx.get(f"{own_server.base_url}/healthz").json()["calendar"]["years"]
    assert case["deadline_estimated"] is (health[str(year)]["status"] != "ok")
    # the government's dates of that year's Ramadan recorded: the case follows the year
    estimate = next(i for i in httpx.get(f"{own_server.base_url}/public/calendar/{year}").json()[
        "items"] if i["kind"] == "ramadan")  # fmt: skip
    start = date.fromisoformat(estimate["date"])
    keeper = own_server.client(f"cal-{secrets.token_hex(4)}", calendar_admin=True)
    body = {"from": start.isoformat(), "to": (start + timedelta(days=29)).isoformat(),
            "reason": "Sidang isbat Kementerian Agama"}  # fmt: skip
    assert keeper.put(f"/api/v1/calendar/ramadan/{year}", json=body).status_code == 200
    after = httpx.get(f"{own_server.base_url}/healthz").json()["calendar"]["years"][str(year)]
    assert after["ramadan"] == "decreed"
    now = loket.get(f"/api/v1/cases/{case['id']}").json()
    assert now["deadline_estimated"] is (after["status"] != "ok")


def test_an_office_zone_moves_its_id_working_deadlines(own_server: Server) -> None:
    office = working_office(own_server)
    case = office.open_case(office.staff("loket"))
    keeper = own_server.client(f"cal-{secrets.token_hex(4)}", opd=office.opd, calendar_admin=True)
    body = {"timezone": "Asia/Jayapura", "reason": "Kantor di Jayapura (WIT)"}
    answer = keeper.put(f"/api/v1/calendar/zones/{office.opd}", json=body)
    assert answer.status_code == 200, answer.text
    moved = office.admin.get(f"/api/v1/cases/{case['id']}").json()
    # the service time in days ends at the same local closing, two hours earlier in UTC
    # (WIT is UTC+9, WIB UTC+7)
    assert at(moved["service_due_at"]) == at(case["service_due_at"]) - timedelta(hours=2)
    assert any(e["data"]["reason"] == body["reason"] for e in rescheduled(own_server, case["id"]))  # type: ignore[index]
    assert keeper.put(
        f"/api/v1/calendar/zones/{office.opd}", json={"timezone": "Mars/Olympus", "reason": "x"}
    ).status_code == 422
