"""Scoping asserted on content: an office's admin never receives another office's data.

Office A and office B each get a case, a transition that ends a timed step visit, and a
payment that differs from the fee (an anomaly). Then, for every trail and report endpoint,
what B's admin receives holds nothing of A's (its office, case, officers) — without a
filter, and with one naming A — while the inspector sees both offices' items.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.integration.conftest import Office, Server


@dataclass
class Planted:
    """An office with a case moved on by a named officer and a fee paid wrong."""

    office: Office
    case_id: str
    loket: str
    kasir: str

    @property
    def markers(self) -> list[str]:
        """What of this office must not reach another office's admin."""
        return [self.office.opd, self.office.sop, self.case_id, self.loket, self.kasir]


def plant(server: Server, tag: str) -> Planted:
    office = server.office()
    loket_name, kasir_name = f"loket-{tag}-{office.opd}", f"kasir-{tag}-{office.opd}"
    loket = office.staff("loket", name=loket_name)
    kasir = office.staff("loket", name=kasir_name)
    case = office.open_case(loket)
    moved = loket.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"})
    assert moved.status_code == 200, moved.text
    paid = kasir.post(
        f"/api/v1/cases/{case['id']}/payments", json={"amount": 40000, "method": "cash"}
    )
    assert paid.status_code in (200, 201), paid.text
    return Planted(office, str(case["id"]), loket_name, kasir_name)


@pytest.fixture
def offices(server: Server) -> tuple[Planted, Planted, httpx.Client]:
    """Offices A and B, each planted, and an inspector."""
    a, b = plant(server, "a"), plant(server, "b")
    inspector = server.client(f"inspektur-{a.office.opd}", inspector=True)
    return a, b, inspector


def holds_none_of(response: httpx.Response, planted: Planted, named: bool = False) -> None:
    """Nothing of `planted` in the response; when the request `named` its office and SOP,
    a refusal may echo those two back, and nothing else."""
    assert response.status_code in (200, 403, 404), response.text
    markers = planted.markers[2:] if named else planted.markers
    for marker in markers:
        assert marker not in response.text, f"{marker} reached another office's admin"


def holds(response: httpx.Response, *planted: Planted) -> None:
    assert response.status_code == 200, response.text
    for p in planted:
        # an officer of the office, and its case or its SOP (reports name SOPs, not cases)
        assert p.loket in response.text or p.kasir in response.text, p
        assert p.case_id in response.text or p.office.sop in response.text, p


# each endpoint, as B's admin asks for it: without a filter, then naming office A
def asks(a: Planted, b: Planted) -> dict[str, list[str]]:
    of_a = f"opd={a.office.opd}"
    return {
        "events": ["/api/v1/audit/events?limit=500", f"/api/v1/audit/events?limit=500&{of_a}"],
        "verify": ["/api/v1/audit/verify", f"/api/v1/audit/verify?{of_a}"],
        "export-csv": ["/api/v1/audit/export?format=csv",
                       f"/api/v1/audit/export?format=csv&{of_a}"],
        "export-xes": ["/api/v1/audit/export?format=xes",
                       f"/api/v1/audit/export?format=xes&{of_a}"],
        "bottlenecks": [f"/api/v1/reports/bottlenecks?sop={b.office.sop}",
                        f"/api/v1/reports/bottlenecks?sop={a.office.sop}&{of_a}"],
        "anomalies": ["/api/v1/reports/anomalies", f"/api/v1/reports/anomalies?{of_a}"],
        "sla": ["/api/v1/reports/sla", f"/api/v1/reports/sla?{of_a}"],
    }  # fmt: skip


ENDPOINTS = ["events", "verify", "export-csv", "export-xes", "bottlenecks", "anomalies", "sla"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_office_admin_receives_nothing_of_another_office(
    offices: tuple[Planted, Planted, httpx.Client], endpoint: str
) -> None:
    a, b, _inspector = offices
    unfiltered, naming_a = asks(a, b)[endpoint]
    own = b.office.admin.get(unfiltered)
    holds_none_of(own, a)
    assert own.status_code == 200
    if endpoint != "verify":  # verify reports on the whole chain, no office's content
        holds(own, b)  # B's admin does get B's own items: the check above is not vacuous
    holds_none_of(b.office.admin.get(naming_a), a, named=True)


def inspector_asks(a: Planted, b: Planted) -> dict[str, list[str]]:
    return {
        "events": [f"/api/v1/audit/events?limit=500&opd={p.office.opd}" for p in (a, b)],
        "export-csv": [f"/api/v1/audit/export?format=csv&opd={p.office.opd}" for p in (a, b)],
        "export-xes": [f"/api/v1/audit/export?format=xes&opd={p.office.opd}" for p in (a, b)],
        "bottlenecks": [f"/api/v1/reports/bottlenecks?sop={p.office.sop}" for p in (a, b)],
        "anomalies": ["/api/v1/reports/anomalies"],
        "sla": ["/api/v1/reports/sla"],
    }


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e != "verify"])
def test_the_inspector_sees_both_offices(
    offices: tuple[Planted, Planted, httpx.Client], endpoint: str
) -> None:
    a, b, inspector = offices
    responses = [inspector.get(path) for path in inspector_asks(a, b)[endpoint]]
    if len(responses) == 1:
        holds(responses[0], a, b)
    else:
        holds(responses[0], a)
        holds(responses[1], b)
