"""`Idempotency-Key`: a POST under /api/v1/cases retried is answered again, never redone."""

from __future__ import annotations

import json
import secrets
import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.service import idempotency
from engine.service.users import Principal
from engine.store.tables import IdempotencyKey
from tests.integration.conftest import Office, Server

PAYMENT = {"amount": 50000, "method": "cash", "receipt": "KW-7"}


def key() -> str:
    return f"retry-{secrets.token_hex(8)}"


def post(
    client: httpx.Client, path: str, body: dict[str, Any], idempotency_key: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(path, content=json.dumps(body).encode(), headers=headers)


def events(office: Office, case_id: str, kind: str) -> int:
    trail = office.admin.get("/api/v1/audit/events", params={"case": case_id, "limit": 500})
    assert trail.status_code == 200, trail.text
    return sum(1 for e in trail.json()["items"] if e["type"] == kind)


def payments(client: httpx.Client, case_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/api/v1/cases/{case_id}/payments").json()["items"])


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_a_payment_retried_with_its_key_is_recorded_once_and_answered_alike(
    server: Server,
) -> None:
    office = server.office()
    loket = office.staff("loket")
    case_id = str(office.open_case(loket)["id"])
    path, retry = f"/api/v1/cases/{case_id}/payments", key()

    first = post(loket, path, PAYMENT, retry)
    assert first.status_code == 201, first.text
    again = post(loket, path, PAYMENT, retry)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"

    assert len(payments(loket, case_id)) == 1
    assert events(office, case_id, "case.payment_recorded") == 1
    assert loket.get(f"/api/v1/cases/{case_id}").json()["paid_total"] == 50000


def test_every_post_under_cases_is_answered_again_and_changes_nothing(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    opening = {
        "sop": office.sop,
        "fields": {"nik": "3201234567890001", "nama": "Budi Santoso"},
        "received": ["ktp"],
    }
    open_key = key()
    opened = post(loket, "/api/v1/cases", opening, open_key)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    path = f"/api/v1/cases/{case_id}"
    received = post(loket, f"{path}/received", {"received": ["denah"]}, key())
    fired_key = key()
    fired = post(loket, f"{path}/transitions", {"name": "terima"}, fired_key)
    assert (received.status_code, fired.status_code) == (200, 200), fired.text

    reopened = post(loket, "/api/v1/cases", opening, open_key)
    assert reopened.status_code == 201
    assert reopened.json() == opened.json()
    assert reopened.headers["ETag"] == opened.headers["ETag"] == '"1"'
    assert reopened.headers["Location"] == opened.headers["Location"]
    refired = post(loket, f"{path}/transitions", {"name": "terima"}, fired_key)
    assert refired.status_code == 200
    assert refired.json() == fired.json() and refired.headers["ETag"] == fired.headers["ETag"]

    mine = loket.get("/api/v1/cases", params={"sop": office.sop}).json()["items"]
    assert [c["id"] for c in mine] == [case_id]
    history = loket.get(f"{path}/history").json()["items"]
    assert [e["type"] for e in history] == ["case.created", "case.received", "case.transitioned"]


def test_the_same_key_on_another_request_is_422_and_runs_nothing(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case_id = str(office.open_case(loket)["id"])
    other_id = str(office.open_case(loket)["id"])
    path, retry = f"/api/v1/cases/{case_id}/payments", key()
    assert post(loket, path, PAYMENT, retry).status_code == 201

    other_body = post(loket, path, {**PAYMENT, "amount": 60000}, retry)
    assert_problem(other_body, 422)
    assert "Idempotency-Key" in other_body.json()["detail"]
    other_path = post(loket, f"/api/v1/cases/{other_id}/payments", PAYMENT, retry)
    assert_problem(other_path, 422)
    other_endpoint = post(
        loket, f"/api/v1/cases/{case_id}/received", {"received": ["denah"]}, retry
    )
    assert_problem(other_endpoint, 422)

    assert len(payments(loket, case_id)) == 1 and payments(loket, other_id) == []
    assert loket.get(f"/api/v1/cases/{case_id}").json()["received"] == ["ktp"]


def age(server: Server, who: str, retry: str, by: timedelta) -> None:
    """Move a key's row back in time, as if it had been claimed `by` earlier."""
    with Session(server.ctx.engine) as session:
        row = session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.user_name == who, IdempotencyKey.key == retry
            )
        ).scalar_one()
        row.created_at -= by
        session.commit()


def test_the_same_key_while_the_first_is_in_flight_is_409(server: Server) -> None:
    """The first request's claim is made as the server makes it, through the service, and
    left unanswered: a request blocked inside the server would hold one of its two
    single-threaded workers, and the second could queue behind it on the same worker."""
    office = server.office()
    name = f"loket-{secrets.token_hex(3)}-{office.opd}"
    loket = office.staff("loket", name=name)
    case_id = str(office.open_case(loket)["id"])
    path, retry = f"/api/v1/cases/{case_id}/payments", key()
    body = json.dumps(PAYMENT).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": retry}
    who = Principal(name, office.opd, frozenset({"loket"}))
    claimed = idempotency.claim(server.ctx, who, retry, idempotency.fingerprint("POST", path, body))
    assert isinstance(claimed, idempotency.Claim)

    second = loket.post(path, content=body, headers=headers)
    assert_problem(second, 409)
    assert "Idempotency-Key" in second.json()["detail"]
    assert payments(loket, case_id) == []
    # a claim never answered (its process died) frees the key after a bounded time
    age(server, name, retry, idempotency.IN_FLIGHT + timedelta(seconds=1))
    retried = loket.post(path, content=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert post(loket, path, PAYMENT, retry).json() == retried.json()
    assert len(payments(loket, case_id)) == 1


def test_concurrent_identical_requests_with_one_key_record_one_payment(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case_id = str(office.open_case(loket)["id"])
    path, retry = f"/api/v1/cases/{case_id}/payments", key()
    barrier = threading.Barrier(8)
    answers: list[httpx.Response] = []

    def send() -> None:
        barrier.wait()
        answers.append(post(loket, path, PAYMENT, retry))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert len({a.text for a in answers if a.status_code == 201}) == 1
    assert len(payments(loket, case_id)) == 1
    assert events(office, case_id, "case.payment_recorded") == 1


def test_two_users_with_the_same_key_are_answered_each_for_their_own(server: Server) -> None:
    office = server.office()
    ani, budi = office.staff("loket"), office.staff("loket")
    case_id = str(office.open_case(ani)["id"])
    path, retry = f"/api/v1/cases/{case_id}/payments", key()
    first, second = post(ani, path, PAYMENT, retry), post(budi, path, PAYMENT, retry)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["recorded_by"] != first.json()["recorded_by"]
    assert len(payments(ani, case_id)) == 2


def test_a_key_older_than_a_day_is_free_again(server: Server) -> None:
    office = server.office()
    name = f"loket-{secrets.token_hex(3)}-{office.opd}"
    loket = office.staff("loket", name=name)
    case_id = str(office.open_case(loket)["id"])
    path, retry = f"/api/v1/cases/{case_id}/payments", key()
    first = post(loket, path, PAYMENT, retry)
    assert first.status_code == 201
    age(server, name, retry, idempotency.RETAIN + timedelta(minutes=1))
    later = post(loket, path, PAYMENT, retry)
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
    assert len(payments(loket, case_id)) == 2


@pytest.mark.parametrize(
    "value",
    ["", "two words", "k" * 256, "ключ".encode(), b"tab\there"],
    ids=["empty", "inner-space", "256-chars", "not-ascii", "control"],
)
def test_a_malformed_key_is_400_naming_the_header_and_runs_nothing(
    server: Server, value: str | bytes
) -> None:
    office = server.office()
    loket = office.staff("loket")
    case_id = str(office.open_case(loket)["id"])
    response = loket.post(
        f"/api/v1/cases/{case_id}/payments", json=PAYMENT, headers={"Idempotency-Key": value}
    )
    assert_problem(response, 400)
    assert "Idempotency-Key" in response.json()["detail"]
    assert payments(loket, case_id) == []
