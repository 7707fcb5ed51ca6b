"""A step worked by another office: Dinkes' recommendation inside DPMPTSP's SIP."""

from __future__ import annotations

import secrets

import httpx

from tests.conftest import WORKFLOWS
from tests.integration.conftest import Office, Server

DOCS = ["ktp_el", "str", "keterangan_tempat_praktik", "pas_foto"]


def sip_office(server: Server) -> tuple[Office, str]:
    """An office with the SIP sample published, and the id of its own Dinkes."""
    office = server.office(publish=False)
    dinkes = f"dinkes-{secrets.token_hex(4)}"
    text = (WORKFLOWS / "sip-dokter.yaml").read_text()
    text = text.replace("sop: sip-dokter", f"sop: {office.sop}")
    text = text.replace("opd: dpmptsp", f"opd: {office.opd}").replace(
        "opd: dinkes", f"opd: {dinkes}"
    )
    published = office.publish(text)
    assert published.status_code == 201, published.text
    return office, dinkes


def open_sip(office: Office, client: httpx.Client) -> str:
    fields = {
        "nik": "3201234567890001",
        "nama": "dr. Sari",
        "nama_fasyankes": "Klinik",
        "sip_ke": 1,
    }
    body = {"sop": office.sop, "fields": fields, "received": DOCS}
    response = client.post("/api/v1/cases", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def fire(client: httpx.Client, case_id: str, name: str) -> httpx.Response:
    return client.post(f"/api/v1/cases/{case_id}/transitions", json={"name": name})


def test_a_dinkes_officer_acts_on_the_recommendation_and_sees_nothing_else(
    server: Server,
) -> None:
    office, dinkes = sip_office(server)
    front, verifikator = office.staff("front_office"), office.staff("verifikator")
    guest = server.client(
        f"dinkes-{secrets.token_hex(3)}", opd=dinkes, roles=("verifikator_dinkes",)
    )
    # staff of the owning office holding the role's name do not hold Dinkes' role
    impostor = office.staff("verifikator_dinkes")
    case_id, other_id = open_sip(office, front), open_sip(office, front)
    assert fire(front, case_id, "terima").status_code == 200
    assert guest.get(f"/api/v1/cases/{case_id}").status_code == 404  # not at their step yet
    assert fire(verifikator, case_id, "teruskan_ke_dinkes").status_code == 200

    seen = guest.get(f"/api/v1/cases/{case_id}")
    assert seen.status_code == 200 and seen.json()["allowed_transitions"] == [
        "kembalikan",
        "rekomendasikan",
        "tidak_direkomendasikan",
    ]
    assert [c["id"] for c in guest.get("/api/v1/cases").json()["items"]] == [case_id]
    assert guest.get(f"/api/v1/cases/{other_id}").status_code == 404
    assert fire(impostor, case_id, "rekomendasikan").status_code == 403
    assert fire(guest, case_id, "rekomendasikan").status_code == 200, seen.text
    # after their work: still theirs to see, and nothing more
    after = guest.get(f"/api/v1/cases/{case_id}")
    assert after.status_code == 200 and after.json()["allowed_transitions"] == []
    assert [c["id"] for c in guest.get("/api/v1/cases").json()["items"]] == [case_id]
    assert guest.get(f"/api/v1/cases/{other_id}").status_code == 404
    assert (
        guest.post(f"/api/v1/cases/{other_id}/transitions", json={"name": "terima"}).status_code
        == 404
    )

    # the reports count the recommendation for Dinkes, the rest for the owning office
    guest_admin = server.client(f"admin-{dinkes}", opd=dinkes, admin=True)
    theirs = guest_admin.get("/api/v1/reports/sla").json()
    assert [(r["opd"], r["step"]) for r in theirs["steps"]] == [(dinkes, "rekomendasi_dinkes")]
    ours = office.admin.get("/api/v1/reports/sla").json()
    assert "rekomendasi_dinkes" not in {r["step"] for r in ours["steps"]}
    assert {r["step"] for r in ours["steps"]} == {"pendaftaran", "verifikasi_administrasi"}


def test_reports_name_the_office_of_the_officer_who_held_the_step(server: Server) -> None:
    office = server.office(publish=False)
    dinkes = f"dinkes-{secrets.token_hex(4)}"
    text = (WORKFLOWS / "sip-dokter.yaml").read_text()
    text = text.replace("sop: sip-dokter", f"sop: {office.sop}")
    text = text.replace("opd: dpmptsp", f"opd: {office.opd}").replace(
        "opd: dinkes", f"opd: {dinkes}"
    )
    # Dinkes' verifier may take money here: a free service, so any payment is a mismatch
    text = text.replace("fee:\n", "fee:\n  collected_by: [front_office, verifikator_dinkes]\n")
    assert office.publish(text).status_code == 201
    front, verifikator = office.staff("front_office"), office.staff("verifikator")
    name = f"dinkes-{secrets.token_hex(3)}"
    guest = server.client(name, opd=dinkes, roles=("verifikator_dinkes",))
    case_id = open_sip(office, front)
    assert fire(front, case_id, "terima").status_code == 200
    assert fire(verifikator, case_id, "teruskan_ke_dinkes").status_code == 200
    paid = guest.post(f"/api/v1/cases/{case_id}/payments", json={"amount": 50000, "method": "cash"})
    assert paid.status_code in (200, 201), paid.text
    assert fire(guest, case_id, "rekomendasikan").status_code == 200

    inspector = server.client(f"inspektur-{dinkes}", inspector=True)
    guest_admin = server.client(f"admin-{dinkes}", opd=dinkes, admin=True)
    url = f"/api/v1/reports/bottlenecks?sop={office.sop}"
    everything = inspector.get(url).json()
    rows = {(r["step"], r["officer"]): r["opd"] for r in everything["officers"]}
    assert rows[("rekomendasi_dinkes", name)] == dinkes
    assert {o for (step, _who), o in rows.items() if step != "rekomendasi_dinkes"} == {office.opd}
    theirs = guest_admin.get(url)
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["opd"] == dinkes
    assert [(r["step"], r["officer"], r["opd"]) for r in theirs.json()["officers"]] == [
        ("rekomendasi_dinkes", name, dinkes)
    ]
    assert {s["step"] for s in theirs.json()["steps"]} == {"rekomendasi_dinkes"}
    ours = office.admin.get(url).json()
    assert name not in {r["officer"] for r in ours["officers"]}
    assert "rekomendasi_dinkes" not in {s["step"] for s in ours["steps"]}
    assert {r["opd"] for r in ours["officers"]} == {office.opd}
    # an office the SOP gives no role reads none of it
    stranger = server.client(f"admin-x-{dinkes}", opd=f"x-{dinkes}", admin=True)
    assert stranger.get(url).status_code == 404

    def mismatches(client: httpx.Client) -> list[dict[str, object]]:
        answer = client.get("/api/v1/reports/anomalies")
        assert answer.status_code == 200, answer.text
        return [i for i in answer.json()["items"] if i["kind"] == "fee_mismatch"]

    (item,) = [i for i in mismatches(inspector) if i["actor"] == name]
    assert item["opd"] == dinkes and item["case_ids"] == [case_id]
    (seen,) = mismatches(guest_admin)
    assert seen["actor"] == name and seen["opd"] == dinkes
    assert mismatches(office.admin) == []  # DPMPTSP's staff are not blamed for it


def test_an_escalation_to_another_offices_role_is_listed_and_ends_at_its_steps(
    server: Server,
) -> None:
    from sqlalchemy import select

    from engine.store.tables import Case

    office, dinkes = sip_office(server)
    front, verifikator = office.staff("front_office"), office.staff("verifikator")
    guest = server.client(
        f"dinkes-{secrets.token_hex(3)}", opd=dinkes, roles=("verifikator_dinkes",)
    )
    kabid = server.client(f"kabid-{secrets.token_hex(3)}", opd=dinkes, roles=("kabid_dinkes",))
    case_id = open_sip(office, front)
    assert fire(front, case_id, "terima").status_code == 200
    assert fire(verifikator, case_id, "teruskan_ke_dinkes").status_code == 200
    assert kabid.get(f"/api/v1/cases/{case_id}").status_code == 404
    assert kabid.get("/api/v1/cases").json()["items"] == []
    # overdue at Dinkes' step: escalated to Dinkes' head, as the timer sweep writes it
    with server.ctx.uow() as uow:
        case = uow.session.execute(select(Case).where(Case.id == case_id)).scalar_one()
        case.extra_roles = ["kabid_dinkes"]
        case.escalation_level = 1
        uow.commit()
    seen = kabid.get(f"/api/v1/cases/{case_id}")
    assert seen.status_code == 200 and "rekomendasikan" in seen.json()["allowed_transitions"]
    assert [c["id"] for c in kabid.get("/api/v1/cases").json()["items"]] == [case_id]
    assert [
        c["id"] for c in kabid.get("/api/v1/cases?step=rekomendasi_dinkes").json()["items"]
    ] == [case_id]
    # once the case is back in DPMPTSP's hands, the escalation gives Dinkes nothing there
    assert fire(guest, case_id, "rekomendasikan").status_code == 200
    assert kabid.get(f"/api/v1/cases/{case_id}").status_code == 404
    assert kabid.get("/api/v1/cases").json()["items"] == []
    assert fire(kabid, case_id, "susun_draf").status_code == 404
    assert fire(verifikator, case_id, "susun_draf").status_code == 200
