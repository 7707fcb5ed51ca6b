"""Requirements that depend on the application (`when`), on the Kartu Keluarga sample."""

from __future__ import annotations

import httpx

from tests.conftest import WORKFLOWS
from tests.integration.conftest import Office, Server


def kk_office(server: Server) -> Office:
    office = server.office(publish=False)
    text = (WORKFLOWS / "kartu-keluarga.yaml").read_text()
    text = text.replace("sop: kartu-keluarga", f"sop: {office.sop}")
    published = office.publish(text.replace("opd: dispendukcapil", f"opd: {office.opd}"))
    assert published.status_code == 201, published.text
    return office


def open_kk(office: Office, loket: httpx.Client, kind: str) -> dict[str, object]:
    body = {
        "sop": office.sop,
        "fields": {"nik": "3201234567890001", "nama": "Budi Santoso", "jenis_permohonan": kind},
        "received": ["formulir_f102"],
    }
    response = loket.post("/api/v1/cases", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_kk_case_asks_for_the_documents_of_its_application_type_only(server: Server) -> None:
    office = kk_office(server)
    loket = office.staff("loket")
    moving = open_kk(office, loket, "pindah_datang")
    assert moving["requirements"] == ["formulir_f102", "skpwni"]
    assert moving["allowed_transitions"] == ["kembalikan"]
    (blocked,) = moving["blocked_transitions"]  # type: ignore[misc]
    assert (blocked["name"], blocked["guard"]) == ("terima", "requires")
    assert "skpwni" in blocked["message"]
    # the documents of other kinds of application are never asked of it
    fired = loket.post(
        f"/api/v1/cases/{moving['id']}/transitions", json={"name": "terima", "received": ["skpwni"]}
    )
    assert fired.status_code == 200, fired.text

    new_family = open_kk(office, loket, "baru")
    assert new_family["requirements"] == ["formulir_f102", "buku_nikah"]
    refused = loket.post(
        f"/api/v1/cases/{new_family['id']}/transitions",
        json={"name": "terima", "received": ["skpwni"]},
    )
    assert refused.status_code == 422 and "buku_nikah" in refused.text
    assert "skpwni" not in refused.json()["errors"][0]["message"]
    # a document asked outside the standard shows in the trail
    path = f"/api/v1/cases/{new_family['id']}/received"
    marked = loket.post(path, json={"received": ["kk_lama"]})
    assert marked.status_code == 200
    events = loket.get(f"/api/v1/cases/{new_family['id']}/history").json()["items"]
    assert [e["data"].get("outside_standard") for e in events if e["type"] == "case.received"][
        -1
    ] == ["kk_lama"]


def test_the_public_standard_says_which_application_each_document_is_for(
    server: Server,
) -> None:
    office = kk_office(server)
    standard = server.client().get(f"/public/sops/{office.sop}").json()
    when = {r["id"]: r["when"] for r in standard["requirements"]}
    assert when["formulir_f102"] is None
    assert when["skpwni"] == {"jenis_permohonan": ["pindah_datang"]}
