"""Every JSON answer is what `/openapi.json` says it is: no field undocumented, none missing.

One walk through the service on a server of its own (it changes the calendar register), on
SQLite and on PostgreSQL, reaching every operation documented with a JSON success answer; each
answer is validated against the document with every object that lists its properties closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine.service import checkpoints
from engine.settings import Settings
from tests.integration.conftest import Server, server_of_its_own
from tests.integration.documented import Documented

# answers a walk on a plain server cannot reach: a cosignature needs a witness the server
# trusts (shown in test_verifiable_trail.py)
UNREACHED = {
    ("POST", "/public/checkpoint/cosignature", "200"),
    ("POST", "/public/checkpoint/cosignature", "201"),
}
LEVY = "fee: {levy: true, billed_by: teknis, basis: Perda Kota Uji 1/2024 tentang Retribusi}"
FLAT_FEE = "fee: {amount: 50000, basis: Perda Kota Uji 1/2026 tentang Retribusi Perizinan}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def own(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from server_of_its_own(request.param, tmp_path_factory.mktemp(request.param), {})


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json() if status != 204 else None


def test_every_json_answer_is_as_documented(own: Server) -> None:
    documented = Documented(own.client().get("/openapi.json").json())
    make_client = own.client

    def client(*args: Any, **kind: Any) -> httpx.Client:
        made = make_client(*args, **kind)
        made.event_hooks["response"].append(documented.check)
        return made

    own.client = client  # type: ignore[method-assign]
    office = own.office(publish=False)
    ok(office.publish(), 201)
    ok(office.publish(), 200)  # the same file again
    anyone = client()
    loket, teknis, kasi = office.staff("loket"), office.staff("teknis"), office.staff("kasi")
    inspector = client(f"inspektur-{office.opd}", inspector=True)
    dpo = client(f"dpo-{office.opd}", opd=office.opd, dpo=True)
    calendar = client(f"kalender-{office.opd}", calendar_admin=True)

    # a case through its whole life, with a payment, a comment and a document received later
    case = office.open_case(loket, usia=40, luas=12.5)
    cases = f"/api/v1/cases/{case['id']}"
    fire = f"{cases}/transitions"
    ok(loket.post(f"{cases}/received", json={"received": ["denah"]}))
    ok(loket.post(fire, json={"name": "kembalikan", "comment": "berkas kurang"}))
    ok(loket.post(fire, json={"name": "lengkapi"}))
    ok(loket.post(fire, json={"name": "terima"}))
    ok(teknis.post(fire, json={"name": "periksa"}))
    ok(loket.post(f"{cases}/payments", json={"amount": 50000, "method": "cash"}), 201)
    ok(loket.post(fire, json={"name": "konfirmasi_bayar"}))
    closed = ok(kasi.post(fire, json={"name": "setujui"}))
    assert closed["status"] == "closed"
    for reader in (loket, inspector):
        ok(reader.get(cases))
        ok(reader.get("/api/v1/cases", params={"sop": office.sop}))
        ok(reader.get(f"{cases}/payments"))
        ok(reader.get(f"{cases}/history"))
    ok(office.admin.get(f"{cases}/personal-data"))

    # a levy: billed, then paid
    levy = own.office(publish=False)
    ok(levy.publish(levy.sop_text().replace(FLAT_FEE, LEVY)), 201)
    levy_loket, levy_teknis = levy.staff("loket"), levy.staff("teknis")
    billed = levy.open_case(levy_loket)
    billed_path = f"/api/v1/cases/{billed['id']}"
    ok(levy_loket.post(f"{billed_path}/transitions", json={"name": "terima"}))
    body = {"amount": 75000, "reference": "SKRD/1", "basis": "Perda Kota Uji 1/2024 Pasal 3"}
    ok(levy_teknis.post(f"{billed_path}/bills", json=body), 201)
    ok(levy_loket.get(billed_path))

    # SOPs, public pages, reports, the trail and its proofs
    for reader in (loket, inspector):
        ok(reader.get("/api/v1/sops"))
        ok(reader.get(f"/api/v1/sops/{office.sop}"))
        ok(reader.get(f"/api/v1/sops/{office.sop}/versions/1"))
    ok(anyone.get("/public/sops"))
    ok(anyone.get(f"/public/sops/{office.sop}"))
    ok(anyone.get(f"/public/track/{case['tracking_code']}"))
    ok(anyone.get("/healthz"))
    for reader in (office.admin, inspector):
        ok(reader.get("/api/v1/reports/bottlenecks", params={"sop": office.sop}))
        ok(reader.get("/api/v1/reports/anomalies"))
        ok(reader.get("/api/v1/reports/sla"))
        events = ok(reader.get("/api/v1/audit/events", params={"case": case["id"]}))
        ok(reader.get("/api/v1/audit/verify"))
    ok(loket.get("/api/v1/notifications"))
    assert own.log is not None
    settings = Settings(data_dir=own.log.parent / ".sopflow")
    first = checkpoints.checkpoint(own.ctx, settings)
    office.open_case(loket)  # one more event for the next checkpoint
    second = checkpoints.checkpoint(own.ctx, settings)
    ok(anyone.get("/public/checkpoint/key"))
    ok(anyone.get("/public/checkpoint/consistency", params={"from": first, "to": second}))
    ok(anyone.get(f"/public/track/{case['tracking_code']}/receipt"))
    ok(inspector.get(f"/api/v1/audit/events/{events['items'][0]['seq']}/inclusion"))

    # the calendar register, for this office alone where it can be
    days = {"date": "2031-01-06", "reason": "banjir", "opd": office.opd}
    ok(calendar.post("/api/v1/calendar/days", json=days), 201)
    ok(calendar.post("/api/v1/calendar/removals", json=days))
    ramadan = {"from": "2031-01-24", "to": "2031-02-22", "reason": "sidang isbat"}
    ok(calendar.put("/api/v1/calendar/ramadan/2031", json=ramadan))
    ok(calendar.put(f"/api/v1/calendar/zones/{office.opd}", json={"timezone": "Asia/Makassar",
                                                                 "reason": "WITA"}))  # fmt: skip
    ok(loket.get("/api/v1/calendar/2031", params={"opd": office.opd}))
    ok(anyone.get("/public/calendar/2031"))

    # users, and erasing the closed case's personal data
    someone = f"someone-{office.opd}"
    office.staff("loket", name=someone)
    for reader in (office.admin, inspector):
        ok(reader.get("/api/v1/users", params={"opd": office.opd}))
    ok(office.admin.post(f"/api/v1/users/{someone}/disable", json={}))
    ok(office.admin.post(f"/api/v1/users/{someone}/enable", json={}))
    ok(office.admin.post(f"/api/v1/users/{someone}/token", json={"expires_in": "90d"}))
    ok(dpo.post(f"{cases}/erasure", json={"reason": "permintaan pemohon"}))
    ok(office.admin.get(f"{cases}/personal-data"))

    assert not documented.problems, "\n".join(documented.problems)
    successes = {key for key in documented.operations() if key[2].startswith("2")}
    missing = successes - UNREACHED - documented.checked
    assert not missing, f"operations no answer reached: {sorted(missing)}"
