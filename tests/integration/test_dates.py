"""Readers name days as they live them: plain dates in the office's zone; unknown event
types are refused with the known ones, not answered with an empty list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.service.moments import instants
from engine.service.users import Principal
from engine.store.tables import CalendarZone
from tests.integration.conftest import Server

WIB = ZoneInfo("Asia/Jakarta")


def test_a_plain_date_is_that_whole_day_in_the_offices_zone(server: Server) -> None:
    office = server.office()
    staff = office.staff("loket")
    case = office.open_case(staff)
    today = datetime.now(WIB).date()
    inspector = server.client("inspektur-dates", inspector=True)
    query = f"/api/v1/audit/events?opd={office.opd}&type=case.created"

    def cases(period: str) -> set[str]:
        answer = inspector.get(f"{query}&{period}")
        assert answer.status_code == 200, answer.text
        return {e["case_id"] for e in answer.json()["items"]}

    assert case["id"] in cases(f"since={today}")
    assert case["id"] in cases(f"until={today}")  # `until` includes its day
    assert case["id"] not in cases(f"until={today - timedelta(days=1)}")
    assert case["id"] not in cases(f"since={today + timedelta(days=1)}")
    for path in (
        f"/api/v1/reports/bottlenecks?sop={office.sop}&since={today}",
        f"/api/v1/reports/anomalies?opd={office.opd}&since={today}&until={today}",
        f"/api/v1/reports/sla?since={today}",
        f"/api/v1/audit/export?format=csv&since={today}",
    ):
        answer = inspector.get(path)
        assert answer.status_code != 422, (path, answer.text)


def test_the_day_starts_at_midnight_where_the_office_is(server: Server) -> None:
    office = server.office()
    staff = Principal("staff", office.opd, frozenset({"loket"}))
    day = date(2026, 12, 4)
    since, until = instants(server.ctx, staff, day, day)
    assert since == datetime(2026, 12, 3, 17, tzinfo=UTC)  # 00:00 WIB
    assert until == datetime(2026, 12, 4, 17, tzinfo=UTC)
    with server.ctx.uow() as uow:
        uow.session.add(
            CalendarZone(
                opd=office.opd, timezone="Asia/Jayapura", set_at=datetime.now(UTC), set_by="t"
            )
        )
        uow.commit()
    since, _ = instants(server.ctx, staff, day, None)
    assert since == datetime(2026, 12, 3, 15, tzinfo=UTC)  # 00:00 WIT
    inspector = Principal("inspektur", None, frozenset(), inspector=True)
    assert instants(server.ctx, inspector, day, None)[0] == datetime(2026, 12, 3, 17, tzinfo=UTC)


def test_an_unknown_event_type_is_refused_naming_the_known_ones(server: Server) -> None:
    inspector = server.client("inspektur-types", inspector=True)
    answer = inspector.get("/api/v1/audit/events?type=case.creatd")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["errors"][0]["field"] == "type"
    assert "case.transitioned" in body["detail"]
    assert "did you mean `case.created`" in body["errors"][0]["message"]
    assert inspector.get("/api/v1/audit/events?type=case.created").status_code == 200


def test_the_api_document_says_which_forms_a_moment_takes(server: Server) -> None:
    document = server.client().get("/openapi.json").json()
    parameters = document["paths"]["/api/v1/audit/events"]["get"]["parameters"]
    since = next(p for p in parameters if p["name"] == "since")
    text = str(since)
    assert "'format': 'date'" in text and "'format': 'date-time'" in text
    assert "plain date" in text
