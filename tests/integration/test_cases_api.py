"""The core loop over a real HTTP server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime

import httpx

from tests.integration.conftest import Server


def fire(
    client: httpx.Client, case: dict[str, object], name: str, **body: object
) -> httpx.Response:
    return client.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": name, **body})


def test_a_case_runs_from_opening_to_closing(server: Server) -> None:
    office = server.office()
    loket, teknis, kasi = office.staff("loket"), office.staff("teknis"), office.staff("kasi")
    case = office.open_case(loket)
    assert case["step"] == "pendaftaran" and case["status"] == "open"
    assert case["allowed_transitions"] == ["terima", "kembalikan"]
    assert case["version"] == 1
    opened = datetime.fromisoformat(str(case["created_at"]))
    # 24x7: the 30-minute step and the 2-hour service are plain elapsed time
    due = datetime.fromisoformat(str(case["step_due_at"]))
    assert (due - opened).total_seconds() == 30 * 60
    assert (datetime.fromisoformat(str(case["service_due_at"])) - opened).total_seconds() == 7200

    for client, name in ((loket, "terima"), (teknis, "periksa")):
        response = fire(client, case, name)
        assert response.status_code == 200, response.text
    paid = loket.post(
        f"/api/v1/cases/{case['id']}/payments", json={"amount": 50000, "method": "qris"}
    )
    assert paid.status_code == 201 and paid.json()["fee_mismatch"] is False
    assert fire(loket, case, "konfirmasi_bayar").status_code == 200
    done = fire(kasi, case, "setujui")
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["outcome"], body["step"]) == ("closed", "completed", "selesai")
    assert body["closed_at"] is not None and body["allowed_transitions"] == []
    assert done.headers["ETag"] == f'"{body["version"]}"'

    history = loket.get(f"/api/v1/cases/{case['id']}/history").json()["items"]
    kinds = [e["type"] for e in history]
    assert kinds == [
        "case.created",
        "case.transitioned",
        "case.transitioned",
        "case.payment_recorded",
        "case.transitioned",
        "case.transitioned",
        "case.closed",
    ]
    seqs = [e["seq"] for e in history]
    assert seqs == sorted(seqs)
    assert history[0]["to_step"] == "pendaftaran"
    last = history[-2]
    assert (last["from_step"], last["to_step"], last["data"]["transition"]) == (
        "persetujuan",
        "selesai",
        "setujui",
    )
    assert history[-1]["seq"] == last["seq"] + 1


def test_every_guard_refusal_says_which_guard(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    both = office.staff("teknis", "kasi")
    body = {"sop": office.sop, "fields": {"nik": "3201234567890001", "nama": "Sri"}}
    case = loket.post("/api/v1/cases", json=body).json()

    missing_doc = fire(loket, case, "terima")
    assert missing_doc.status_code == 422
    assert missing_doc.headers["Content-Type"].startswith("application/problem+json")
    assert [e["guard"] for e in missing_doc.json()["errors"]] == ["requires"]
    assert "`ktp`" in missing_doc.json()["detail"]

    no_comment = fire(loket, case, "kembalikan")
    assert no_comment.status_code == 422
    assert [e["guard"] for e in no_comment.json()["errors"]] == ["comment"]

    # documents marked in the same call satisfy the guard
    assert fire(loket, case, "terima", received=["ktp"]).status_code == 200
    assert fire(both, case, "periksa").status_code == 200
    unpaid = fire(loket, case, "konfirmasi_bayar")
    assert unpaid.status_code == 422
    assert [e["guard"] for e in unpaid.json()["errors"]] == ["payment"]
    assert "Rp 50.000" in unpaid.json()["detail"]
    loket.post(f"/api/v1/cases/{case['id']}/payments", json={"amount": 50000, "method": "cash"})
    assert fire(loket, case, "konfirmasi_bayar").status_code == 200

    same_person = fire(both, case, "setujui")
    assert same_person.status_code == 422
    assert [e["guard"] for e in same_person.json()["errors"]] == ["not_by"]

    wrong_role = fire(loket, case, "setujui")
    assert wrong_role.status_code == 403

    not_here = fire(both, case, "terima")
    assert not_here.status_code == 409
    assert "setujui" in not_here.json()["detail"] and "tolak" in not_here.json()["detail"]

    # a refused attempt leaves the case as it was, and only its audit event behind
    now = both.get(f"/api/v1/cases/{case['id']}").json()
    assert now["step"] == "persetujuan"
    trail = office.admin.get("/api/v1/audit/events", params={"case": case["id"]}).json()["items"]
    refused = [e for e in trail if e["type"] == "case.transition_refused"]
    assert [e["data"]["guards"] for e in refused] == [
        ["requires"],
        ["comment"],
        ["payment"],
        ["not_by"],
    ]
    denied = [e for e in trail if e["type"] == "access.denied"]
    assert len(denied) == 1 and denied[0]["actor"].startswith("loket")


def test_sixteen_concurrent_identical_transitions_give_exactly_one_200(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    clients = [office.staff("loket") for _ in range(16)]
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def press(client: httpx.Client) -> None:
        barrier.wait()
        statuses.append(fire(client, case, "terima").status_code)

    threads = [threading.Thread(target=press, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * 15
    history = loket.get(f"/api/v1/cases/{case['id']}/history").json()["items"]
    assert [e["type"] for e in history].count("case.transitioned") == 1
    final = loket.get(f"/api/v1/cases/{case['id']}").json()
    assert final["step"] == "pemeriksaan" and final["version"] == 2


def test_thirty_two_concurrent_payments_on_one_case_are_all_recorded(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    clients = [office.staff("loket") for _ in range(32)]
    amounts = [50000 + i for i in range(32)]
    barrier = threading.Barrier(32)
    statuses: list[int] = []

    def pay(client: httpx.Client, amount: int) -> None:
        barrier.wait()
        response = client.post(
            f"/api/v1/cases/{case['id']}/payments", json={"amount": amount, "method": "cash"}
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=pay, args=ca) for ca in zip(clients, amounts, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * 32
    final = loket.get(f"/api/v1/cases/{case['id']}").json()
    assert final["paid_total"] == sum(amounts)
    history = loket.get(f"/api/v1/cases/{case['id']}/history").json()["items"]
    assert [e["type"] for e in history].count("case.payment_recorded") == 32
    inspector = server.client(f"inspektur-{office.opd}", inspector=True)
    assert inspector.get("/api/v1/audit/verify").json()["ok"] is True


def test_a_stale_if_match_gets_412_and_changes_nothing(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    etag = loket.get(f"/api/v1/cases/{case['id']}").headers["ETag"]
    fresh = loket.post(
        f"/api/v1/cases/{case['id']}/received", json={"received": ["denah"]},
        headers={"If-Match": etag},
    )  # fmt: skip
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    stale = loket.post(
        f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"},
        headers={"If-Match": etag},
    )  # fmt: skip
    assert stale.status_code == 412
    assert loket.get(f"/api/v1/cases/{case['id']}").json()["step"] == "pendaftaran"


def test_a_payment_off_the_official_fee_is_recorded_and_flagged(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    paid = loket.post(
        f"/api/v1/cases/{case['id']}/payments",
        json={"amount": 150000, "method": "cash", "receipt": "KW-001"},
    )
    assert paid.status_code == 201
    assert paid.json()["fee_mismatch"] is True and paid.json()["expected"] == 50000
    now = loket.get(f"/api/v1/cases/{case['id']}").json()
    assert "fee_mismatch" in now["flags"]
    flagged = loket.get("/api/v1/cases", params={"flagged": "true"}).json()["items"]
    assert [c["id"] for c in flagged] == [case["id"]]
    event = loket.get(f"/api/v1/cases/{case['id']}/history").json()["items"][-1]
    assert event["type"] == "case.payment_recorded" and event["data"]["excess"] == 100000


def test_field_values_are_checked_against_the_sop(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    response = loket.post(
        "/api/v1/cases",
        json={"sop": office.sop, "fields": {"nik": "12", "usia": "tua", "alamat": "x"}},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"fields.nik", "fields.usia", "fields.alamat", "fields.nama"}


def test_publishing_is_idempotent_and_versions_never_change(server: Server) -> None:
    office = server.office()
    again = office.publish()
    assert again.status_code == 200
    changed = office.publish(office.sop_text().replace("Surat Izin Uji", "Surat Izin Lain"))
    assert changed.status_code == 409
    v2 = office.publish(office.sop_text(version=2))
    assert v2.status_code == 201
    assert v2.headers["Location"] == f"/api/v1/sops/{office.sop}/versions/2"
    latest = office.admin.get(f"/api/v1/sops/{office.sop}").json()
    assert latest["version"] == 2
    text = office.sop_text().replace("to: pemeriksaan,", "to: pemeriksan,")
    broken = office.publish(text)
    assert broken.status_code == 422
    (error,) = broken.json()["errors"]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "to: pemeriksan," in t)
    assert error["line"] == line and "did you mean `pemeriksaan`" in error["message"]


def test_public_pages_show_the_standard_and_the_progress_without_personal_data(
    server: Server,
) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    anonymous = server.client()
    standard = anonymous.get(f"/public/sops/{office.sop}")
    assert standard.status_code == 200
    assert standard.json()["fee"] == {
        "amount": 50000,
        "basis": "Perda Kota Uji 1/2026 tentang Retribusi Perizinan",
        "free": False,
        "levy": False,
    }
    assert [r["id"] for r in standard.json()["requirements"]] == ["ktp", "denah"]
    tracked = anonymous.get(f"/public/track/{case['tracking_code']}")
    assert tracked.status_code == 200
    assert tracked.json()["step_name"] == "Pendaftaran"
    for text in (tracked.text, standard.text, anonymous.get("/public/sops").text):
        assert "3201234567890001" not in text and "Budi" not in text
    assert anonymous.get("/public/track/AAAA-BBBB-CCCC").status_code == 404


def test_no_nik_or_name_in_clear_anywhere_in_the_audit_trail(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket, usia=40)
    inspector = server.client(f"inspektur-{office.opd}", inspector=True)
    events = inspector.get("/api/v1/audit/events", params={"case": case["id"]}).json()
    assert "3201234567890001" not in str(events) and "Budi" not in str(events)
    created = events["items"][0]["data"]["fields"]
    assert created == {"nik": "3201********0001", "nama": "B*** S******", "usia": 40}
    # the inspectorate reads the case itself masked too; its own staff see the clear values
    assert (
        inspector.get(f"/api/v1/cases/{case['id']}").json()["fields"]["nik"] == "3201********0001"
    )
    assert loket.get(f"/api/v1/cases/{case['id']}").json()["fields"]["nik"] == "3201234567890001"
