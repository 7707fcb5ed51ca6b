"""Levies billed per case, lawful charges and deemed approval, over HTTP on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from engine.service import timers
from engine.store.tables import Case, SlaTimer
from tests.integration.conftest import Office, Server

FLAT_FEE = "fee: {amount: 50000, basis: Perda Kota Uji 1/2026 tentang Retribusi Perizinan}"
LEVY = (
    "fee: {levy: true, billed_by: teknis, basis: Perda Kota Uji 1/2024 tentang Retribusi}\n"
    "charges:\n"
    "  - {id: denda_terlambat, name: Denda keterlambatan, amount: 100000, "
    "basis: Perda Kota Uji 5/2023 Pasal 12}\n"
    "deemed_approval: true\n"
    "decision_time: 1h"
)
BASIS = "Perda Kota Uji 1/2024 Pasal 30"


def levy_office(server: Server) -> Office:
    """An office whose SOP bills its levy per case (like PBG) and declares a late fine."""
    office = server.office(publish=False)
    text = office.sop_text()
    assert FLAT_FEE in text
    published = office.publish(text.replace(FLAT_FEE, LEVY))
    assert published.status_code == 201, published.text
    return office


def fire(client: httpx.Client, case_id: str, name: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/cases/{case_id}/transitions", json={"name": name, **body})


def to_payment_step(office: Office) -> tuple[str, httpx.Client, httpx.Client]:
    loket, teknis = office.staff("loket"), office.staff("teknis")
    case_id = str(office.open_case(loket)["id"])
    assert fire(loket, case_id, "terima").status_code == 200
    assert fire(teknis, case_id, "periksa").status_code == 200
    return case_id, loket, teknis


def bill(client: httpx.Client, case_id: str, amount: int, **extra: Any) -> httpx.Response:
    body = {"amount": amount, "reference": f"SKRD/2026/{amount}", "basis": BASIS, **extra}
    return client.post(f"/api/v1/cases/{case_id}/bills", json=body)


def pay(client: httpx.Client, case_id: str, amount: int, **extra: Any) -> httpx.Response:
    body = {"amount": amount, "method": "transfer", **extra}
    return client.post(f"/api/v1/cases/{case_id}/payments", json=body)


def fee_anomalies(office: Office) -> list[dict[str, Any]]:
    report = office.admin.get("/api/v1/reports/anomalies").json()
    return [i for i in report["items"] if i["kind"] == "fee_mismatch"]


def test_a_levy_paid_as_billed_passes_and_accuses_nobody(server: Server) -> None:
    office = levy_office(server)
    case_id, loket, teknis = to_payment_step(office)
    issued = bill(teknis, case_id, 5_000_000)
    assert issued.status_code == 201, issued.text
    assert issued.json()["amount"] == 5_000_000 and issued.json()["billed_by"]
    case = loket.get(f"/api/v1/cases/{case_id}").json()
    assert case["bill"]["reference"] == "SKRD/2026/5000000"
    paid = pay(loket, case_id, 5_000_000)
    assert paid.status_code == 201 and paid.json()["fee_mismatch"] is False, paid.text
    assert fire(loket, case_id, "konfirmasi_bayar").status_code == 200
    assert fee_anomalies(office) == []
    kinds = [e["type"] for e in loket.get(f"/api/v1/cases/{case_id}/history").json()["items"]]
    assert "case.billed" in kinds


def test_paying_the_old_flat_amount_against_a_bill_cannot_pass_the_payment_guard(
    server: Server,
) -> None:
    office = levy_office(server)
    case_id, loket, teknis = to_payment_step(office)
    assert bill(teknis, case_id, 5_000_000).status_code == 201
    assert pay(loket, case_id, 750_000).json()["fee_mismatch"] is False  # an instalment
    case = loket.get(f"/api/v1/cases/{case_id}").json()
    assert "konfirmasi_bayar" not in case["allowed_transitions"]
    (blocked,) = case["blocked_transitions"]
    assert (blocked["name"], blocked["guard"]) == ("konfirmasi_bayar", "payment")
    assert "Rp 5.000.000" in blocked["message"]
    refused = fire(loket, case_id, "konfirmasi_bayar")
    assert refused.status_code == 422 and "Rp 5.000.000" in refused.text


def test_paying_more_than_the_bill_is_a_fee_mismatch_naming_the_excess(server: Server) -> None:
    office = levy_office(server)
    case_id, loket, teknis = to_payment_step(office)
    assert bill(teknis, case_id, 5_000_000).status_code == 201
    paid = pay(loket, case_id, 5_500_000)
    assert paid.json()["fee_mismatch"] is True
    (item,) = fee_anomalies(office)
    assert item["case_ids"] == [case_id] and item["severity"] == "high"
    assert "Rp 500.000 more" in item["detail"]


def test_a_payment_before_any_bill_is_a_fee_mismatch(server: Server) -> None:
    office = levy_office(server)
    case_id, loket, _teknis = to_payment_step(office)
    assert pay(loket, case_id, 1_000_000).json()["fee_mismatch"] is True
    (item,) = fee_anomalies(office)
    assert "Rp 1.000.000 more" in item["detail"] and "before any bill" in item["detail"]
    blocked = loket.get(f"/api/v1/cases/{case_id}").json()["blocked_transitions"]
    assert "no bill" in blocked[0]["message"]


def test_a_waived_levy_passes_with_no_payment_and_a_bill_supersedes_the_last(
    server: Server,
) -> None:
    office = levy_office(server)
    case_id, loket, teknis = to_payment_step(office)
    assert bill(teknis, case_id, 5_000_000).status_code == 201
    no_ground = bill(teknis, case_id, 0)
    assert no_ground.status_code == 422 and "waiver" in no_ground.text
    waived = bill(teknis, case_id, 0, waiver="MBR: SKB 2024 pembebasan retribusi PBG")
    assert waived.status_code == 201, waived.text
    case = loket.get(f"/api/v1/cases/{case_id}").json()
    assert case["bill"]["amount"] == 0 and case["bill"]["waiver"].startswith("MBR")
    assert case["allowed_transitions"] == ["konfirmasi_bayar"]
    assert fire(loket, case_id, "konfirmasi_bayar").status_code == 200
    billed = [
        e["data"]
        for e in loket.get(f"/api/v1/cases/{case_id}/history").json()["items"]
        if e["type"] == "case.billed"
    ]
    assert [b["amount"] for b in billed] == [5_000_000, 0]
    assert billed[1]["supersedes"] == "SKRD/2026/5000000"


def test_only_the_billing_role_bills_and_only_a_levy_is_billed(server: Server) -> None:
    office = levy_office(server)
    case_id, loket, _teknis = to_payment_step(office)
    refused = bill(loket, case_id, 5_000_000)
    assert refused.status_code == 403 and "fee.billed_by" in refused.json()["detail"]
    flat = server.office()
    flat_loket = flat.staff("loket", "teknis")
    flat_case = str(flat.open_case(flat_loket)["id"])
    assert bill(flat_loket, flat_case, 5_000_000).status_code == 409


def test_a_declared_charge_at_its_amount_is_lawful_and_at_another_is_not(server: Server) -> None:
    office = levy_office(server)
    case_id, loket, teknis = to_payment_step(office)
    fine = pay(loket, case_id, 100_000, charge="denda_terlambat")
    assert fine.status_code == 201 and fine.json()["fee_mismatch"] is False
    assert fine.json()["charge"] == "denda_terlambat"
    assert fee_anomalies(office) == []
    unknown = pay(loket, case_id, 100_000, charge="denda_lain")
    assert unknown.status_code == 422 and "denda_terlambat" in unknown.text
    other_case, _l, _t = to_payment_step(office)
    assert pay(loket, other_case, 150_000, charge="denda_terlambat").json()["fee_mismatch"]
    (item,) = fee_anomalies(office)
    assert item["case_ids"] == [other_case] and "Rp 50.000 more" in item["detail"]
    # a charge paid is not the levy paid
    assert bill(teknis, case_id, 5_000_000).status_code == 201
    assert "konfirmasi_bayar" not in loket.get(f"/api/v1/cases/{case_id}").json()[
        "allowed_transitions"
    ]


def test_after_deemed_approval_a_rejection_is_refused_and_tracking_says_granted(
    server: Server,
) -> None:
    office = levy_office(server)
    loket, teknis, kasi = office.staff("loket"), office.staff("teknis"), office.staff("kasi")
    opened = office.open_case(loket)
    case_id = str(opened["id"])
    assert fire(loket, case_id, "terima").status_code == 200
    assert fire(teknis, case_id, "periksa").status_code == 200
    assert bill(teknis, case_id, 0, waiver="MBR").status_code == 201
    assert fire(loket, case_id, "konfirmasi_bayar").status_code == 200
    # the service time runs out undecided: bring its timer due and sweep
    past = datetime.now(UTC) - timedelta(seconds=5)
    with server.ctx.uow() as uow:
        pk = uow.session.execute(
            Case.__table__.select().where(Case.id == case_id)  # type: ignore[attr-defined]
        ).one().pk
        uow.session.execute(
            update(SlaTimer).where(SlaTimer.case_pk == pk, SlaTimer.rung == -1).values(due_at=past)
        )
        uow.commit()
    timers.sweep(server.ctx)
    case = kasi.get(f"/api/v1/cases/{case_id}").json()
    assert case["deemed_approved_at"] is not None and case["decision_due_at"] is not None
    assert "tolak" not in case["allowed_transitions"]
    assert any(b["guard"] == "deemed_approval" for b in case["blocked_transitions"])
    refused = fire(kasi, case_id, "tolak", comment="tidak memenuhi syarat")
    assert refused.status_code == 409, refused.text
    assert "UU 30/2014 Pasal 53" in refused.json()["detail"]
    tracked = server.client().get(f"/public/track/{opened['tracking_code']}").json()
    assert tracked["deemed_approved_at"] == case["deemed_approved_at"]
    assert tracked["status"] == "open"
    assert fire(kasi, case_id, "setujui").status_code == 200
