"""Who may take money and mark documents: the SOP's collectors, and who works on the step."""

from __future__ import annotations

from typing import Any

import httpx

from engine.domain.validator import load_sop
from engine.service.cases import step_roles
from engine.store.tables import Case
from tests.integration.conftest import TEST_SOP, Office, Server

PAYMENT = {"amount": 50000, "method": "cash"}


def cashier_office(server: Server) -> Office:
    """An office whose SOP has its fee collected by a cashier (`kasir`) alone."""
    office = server.office(publish=False)
    text = office.sop_text()
    text = text.replace(
        "fee: {amount: 50000, basis: Perda Kota Uji 1/2026 tentang Retribusi Perizinan}",
        "fee: {amount: 50000, basis: Perda Kota Uji 1/2026 tentang Retribusi Perizinan, "
        "collected_by: [kasir]}",
    )
    text = text.replace("  kadis: Kepala Dinas\n", "  kadis: Kepala Dinas\n  kasir: Kasir\n")
    assert "collected_by: [kasir]" in text and "kasir: Kasir" in text
    published = office.publish(text)
    assert published.status_code == 201, published.text
    return office


def denials(office: Office, case_id: str) -> list[dict[str, Any]]:
    trail = office.admin.get("/api/v1/audit/events", params={"case": case_id, "limit": 500})
    return [e for e in trail.json()["items"] if e["type"] == "access.denied"]


def assert_forbidden(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    for word in words:
        assert word in response.json()["detail"]


def test_only_the_sops_collectors_record_payments(server: Server) -> None:
    office = cashier_office(server)
    loket, cetak, kasir = office.staff("loket"), office.staff("cetak"), office.staff("kasir")
    case_id = str(office.open_case(loket)["id"])
    path = f"/api/v1/cases/{case_id}/payments"

    for client in (loket, cetak, office.admin):
        assert_forbidden(client.post(path, json=PAYMENT), "`kasir`", "fee.collected_by")
    assert loket.get(path).json()["items"] == []
    refused = denials(office, case_id)
    assert len(refused) == 3
    assert {e["data"]["action"] for e in refused} == {"payment"}
    assert refused[0]["data"]["roles"] == ["kasir"]

    paid = kasir.post(path, json=PAYMENT)
    assert paid.status_code == 201, paid.text
    assert loket.get(f"/api/v1/cases/{case_id}").json()["paid_total"] == 50000


def test_without_collected_by_the_first_steps_role_records_payments(server: Server) -> None:
    office = server.office()  # the test SOP names no collectors; its first step is `loket`'s
    loket, teknis = office.staff("loket"), office.staff("teknis")
    case_id = str(office.open_case(loket)["id"])
    path = f"/api/v1/cases/{case_id}/payments"
    assert_forbidden(teknis.post(path, json=PAYMENT), "`loket`")
    assert loket.post(path, json=PAYMENT).status_code == 201
    assert len(loket.get(path).json()["items"]) == 1


def test_documents_are_marked_by_who_works_on_the_current_step(server: Server) -> None:
    office = server.office()
    loket, teknis, cetak = office.staff("loket"), office.staff("teknis"), office.staff("cetak")
    case = office.open_case(loket)
    path = f"/api/v1/cases/{case['id']}"
    denah = {"received": ["denah"]}

    # at `pendaftaran` (loket's): loket marks, the technician and a print operator may not
    assert_forbidden(teknis.post(f"{path}/received", json=denah), "`pendaftaran`", "`loket`")
    assert_forbidden(cetak.post(f"{path}/received", json=denah))
    # nor through a transition they may not fire
    fired = teknis.post(f"{path}/transitions", json={"name": "terima", "received": ["denah"]})
    assert fired.status_code == 403
    assert loket.get(path).json()["received"] == ["ktp"]
    assert len(denials(office, str(case["id"]))) == 3

    assert loket.post(f"{path}/transitions", json={"name": "terima"}).status_code == 200
    # at `pemeriksaan` (teknis's): now the technician marks, the front desk may not
    assert_forbidden(loket.post(f"{path}/received", json=denah), "`pemeriksaan`", "`teknis`")
    marked = teknis.post(f"{path}/received", json=denah)
    assert marked.status_code == 200, marked.text
    assert marked.json()["received"] == ["ktp", "denah"]


def test_no_documents_are_marked_on_a_closed_case(server: Server) -> None:
    office = server.office()
    loket, teknis, kasi = office.staff("loket"), office.staff("teknis"), office.staff("kasi")
    case_id = str(office.open_case(loket)["id"])
    path = f"/api/v1/cases/{case_id}"
    for client, name in ((loket, "terima"), (teknis, "periksa")):
        assert client.post(f"{path}/transitions", json={"name": name}).status_code == 200
    assert loket.post(f"{path}/payments", json=PAYMENT).status_code == 201
    assert loket.post(f"{path}/transitions", json={"name": "konfirmasi_bayar"}).status_code == 200
    done = kasi.post(f"{path}/transitions", json={"name": "tolak", "comment": "tidak lengkap"})
    assert done.json()["status"] == "closed"
    late = kasi.post(f"{path}/received", json={"received": ["denah"]})
    assert late.status_code == 409, late.text
    assert late.headers["Content-Type"].startswith("application/problem+json")


def test_the_roles_of_a_step_are_its_own_its_transitions_and_the_escalations() -> None:
    sop = load_sop(TEST_SOP.read_text())
    case = Case(step="menunggu_pemohon", extra_roles=[])
    assert step_roles(sop, case) == ["loket"]  # a paused step: `lengkapi` is loket's
    case = Case(step="pemeriksaan", extra_roles=["kasi", "teknis"])
    assert step_roles(sop, case) == ["teknis", "kasi"]
