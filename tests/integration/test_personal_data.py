"""Personal data out of the chain (UU 27/2022): commitments, erasure, access, retention.

The erasure test runs on a server and database of its own, so that no other test's
applicants are in the bytes it reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from engine.domain.audit import is_commitment
from engine.service import personal
from tests.integration.conftest import Office, Server, server_of_its_own
from tests.integration.test_verifiable_trail import receipt_holds, sign

NIK = "3201234567890001"
NAME = "Budi Santoso"
PHONE = "0812-3456-7890"
SECRETS = (NIK, NAME, PHONE, "081234567890", "Budi", "Santoso")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def own(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on a database of its own: the bytes read below are this module's alone."""
    yield from server_of_its_own(request.param, tmp_path_factory.mktemp(request.param), {})


def closed_case(office: Office, loket: httpx.Client, teknis: httpx.Client,
                kasi: httpx.Client) -> dict:  # fmt: skip
    """A case through the whole flow, with a comment quoting the NIK and a phone number."""
    body = {"sop": office.sop, "fields": {"nik": NIK, "nama": NAME, "usia": 40},
            "received": ["ktp"]}  # fmt: skip
    # opened with an Idempotency-Key: its stored answer holds the applicant's data
    opened = loket.post("/api/v1/cases", json=body, headers={"Idempotency-Key": "open-1"})
    assert opened.status_code == 201, opened.text
    case = opened.json()
    path = f"/api/v1/cases/{case['id']}"
    comment = f"KK pemohon NIK {NIK} belum dibawa; hubungi {NAME} di {PHONE}"
    for who, name, extra in [
        (loket, "kembalikan", {"comment": comment}),
        (loket, "lengkapi", {}),
        (loket, "terima", {}),
        (teknis, "periksa", {}),
    ]:
        fired = who.post(f"{path}/transitions", json={"name": name, **extra})
        assert fired.status_code == 200, fired.text
    paid = loket.post(f"{path}/payments", json={"amount": 50000, "method": "cash"})
    assert paid.status_code == 201, paid.text
    for name in ("konfirmasi_bayar", "setujui"):
        fired = (loket if name == "konfirmasi_bayar" else kasi).post(
            f"{path}/transitions", json={"name": name}
        )
        assert fired.status_code == 200, fired.text
    assert fired.json()["status"] == "closed"
    return case


def raw_trail(server: Server, case_id: str) -> str:
    with server.ctx.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT CAST(data AS TEXT) FROM audit_event WHERE case_id = :c"), {"c": case_id}
        ).scalars()
        return "\n".join(rows)


def answers(server: Server, office: Office, case: dict, inspector: httpx.Client) -> list[str]:
    """Every answer the API and the command line give about the case, as text."""
    path = f"/api/v1/cases/{case['id']}"
    out = []
    for client in (office.admin, inspector):
        for url in (path, f"{path}/history", f"{path}/payments", "/api/v1/cases",
                    f"/api/v1/audit/events?case={case['id']}", "/api/v1/audit/events",
                    "/api/v1/audit/export?format=csv", "/api/v1/audit/export?format=xes",
                    f"/api/v1/reports/anomalies?opd={office.opd}",
                    f"/api/v1/reports/bottlenecks?sop={office.sop}"):  # fmt: skip
            out.append(client.get(url).text)
    out.append(office.admin.get(f"{path}/personal-data").text)
    out.append(httpx.get(f"{server.base_url}/public/track/{case['tracking_code']}").text)
    report = cli(server, "pdp", "report", "--opd", office.opd)
    assert report.returncode == 0, report.stderr
    out.append(report.stdout + report.stderr)
    return out


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    url = server.ctx.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "SOPFLOW_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "sopflow", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_a_case_s_personal_data_is_erased_without_a_trace_and_the_trail_still_verifies(
    own: Server,
) -> None:
    office = own.office()
    loket, teknis = office.staff("loket"), office.staff("teknis")
    kasi = office.staff("kasi")
    dpo = own.client(f"dpo-{office.opd}", opd=office.opd, dpo=True)
    inspector = own.client(f"inspektur-{office.opd}", inspector=True)
    case = closed_case(office, loket, teknis, kasi)
    path = f"/api/v1/cases/{case['id']}"

    # the chain holds commitments, never the values, not even masked
    stored = raw_trail(own, case["id"])
    for value in (*SECRETS, "3201********0001", "B*** S******"):
        assert value not in stored
    created = json.loads(stored.split("\n")[0])
    assert is_commitment(created["fields"]["nik"]) and created["fields"]["usia"] == 40
    # the office reads its case's history in clear; the inspectorate masked
    mine = office.admin.get(f"{path}/history").json()["items"]
    assert mine[0]["data"]["fields"] == {"nik": NIK, "nama": NAME, "usia": 40}
    assert any(PHONE in str(e["data"].get("comment")) for e in mine)
    theirs = inspector.get(f"/api/v1/audit/events?case={case['id']}").json()["items"]
    assert theirs[0]["data"]["fields"] == {"nik": "3201********0001", "nama": "B*** S******",
                                           "usia": 40}  # fmt: skip
    assert NIK not in str(theirs) and PHONE not in str(theirs) and "Budi" not in str(theirs)
    held = office.admin.get(f"{path}/personal-data")
    assert held.status_code == 200, held.text
    names = {item["name"] for item in held.json()["items"]}
    assert {"fields.nik", "fields.nama", "comment"} <= names
    assert all(item["purpose"] for item in held.json()["items"])
    assert inspector.get(f"{path}/personal-data").status_code == 403
    tracking = case["tracking_code"]
    receipt = httpx.get(f"{own.base_url}/public/track/{tracking}/receipt")
    assert receipt.status_code == 200, receipt.text

    # an open case is refused, and so is anyone but the office's DPO
    other = office.open_case(loket, nik="3271999999990009", nama="Siti Aminah")
    refused = dpo.post(f"/api/v1/cases/{other['id']}/erasure", json={"reason": "permintaan"})
    assert refused.status_code == 409 and "open" in refused.json()["detail"]
    not_dpo = office.admin.post(f"{path}/erasure", json={"reason": "permintaan pemohon"})
    assert not_dpo.status_code == 403
    stranger = own.office().admin
    assert stranger.post(f"{path}/erasure", json={"reason": "x"}).status_code == 404

    erased = dpo.post(f"{path}/erasure", json={"reason": "permintaan pemohon (surat 12/2026)"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased_by"] == f"dpo-{office.opd}"
    assert dpo.post(f"{path}/erasure", json={"reason": "lagi"}).status_code == 409

    # nothing of the applicant anywhere: answers, exports, reports, the log
    for answer in answers(own, office, case, inspector):
        for value in SECRETS:
            assert value not in answer
    assert office.admin.get(path).json()["fields"]["nik"] == "[erased]"
    history = office.admin.get(f"{path}/history").json()["items"]
    assert history[0]["data"]["fields"]["nik"] == "[erased]"
    assert history[-1]["type"] == "case.erased"
    assert history[-1]["data"]["reason"] == "permintaan pemohon (surat 12/2026)"
    # a retry of the opening answers anew instead of replaying the applicant's data
    retried = loket.post("/api/v1/cases", json={"sop": office.sop, "fields": {}},
                         headers={"Idempotency-Key": "open-1"})  # fmt: skip
    for value in SECRETS:
        assert value not in retried.text
    assert own.log is not None
    log = own.log.read_text()
    for value in SECRETS:
        assert value not in log

    # the chain and every proof of the case's events still hold
    verified = inspector.get("/api/v1/audit/verify").json()
    assert verified["ok"] is True, verified
    sign(own)
    assert receipt_holds(own, receipt.json())
    after = httpx.get(f"{own.base_url}/public/track/{tracking}/receipt").json()
    assert receipt_holds(own, after)

    # and not a byte of it in the database file or its WAL
    if own.backend == "sqlite":
        database = Path(own.ctx.engine.url.database or "")
        for file in (database, Path(f"{database}-wal")):
            if file.exists():
                content = file.read_bytes()
                for value in SECRETS:
                    assert value.encode() not in content, (file.name, value)
    else:
        with own.ctx.engine.connect() as conn:
            for table in ("personal_datum", "case_secret"):
                count = conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE case_id = :c"), {"c": case["id"]}
                ).scalar_one()
                assert count == 0


def test_retention_erases_closed_cases_past_it_each_audited(own: Server) -> None:
    office = own.office()
    source = office.sop_text(version=2) + "retention: 30d\n"
    assert office.publish(source).status_code == 201
    loket, teknis = office.staff("loket"), office.staff("teknis")
    case = closed_case(office, loket, teknis, office.staff("kasi"))
    # not yet: 30 days have not passed since it closed
    assert case["id"] not in personal.erase_expired(own.ctx)
    later = own.ctx.clock() + timedelta(days=31)
    assert case["id"] in personal.erase_expired(own.ctx, later)
    history = office.admin.get(f"/api/v1/cases/{case['id']}/history").json()["items"]
    assert history[-1]["type"] == "case.erased" and history[-1]["actor"] == "retention"
    assert "30d" in history[-1]["data"]["reason"]
    assert NIK not in str(history) and "Budi" not in str(history)
    run = cli(own, "pdp", "erase-expired")
    assert run.returncode == 0, run.stderr
    report = cli(own, "pdp", "report", "--opd", office.opd)
    assert "retention:       30d" in report.stdout and "nik" in report.stdout
