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
