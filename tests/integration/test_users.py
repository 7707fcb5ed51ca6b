"""Users managed over the API by their office's admin: a new token or a disabled user
takes effect at once in every server process; expired tokens are refused in words."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from engine.service.users import add_user, issue_token
from tests.integration.conftest import Server

TRIES = 8  # requests per check: the server runs several workers, each must agree


def as_(server: Server, token: str) -> httpx.Client:
    client = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    server.clients.append(client)
    return client


def statuses(client: httpx.Client) -> set[int]:
    return {client.get("/api/v1/notifications").status_code for _ in range(TRIES)}


def test_a_new_token_and_a_disabled_user_take_effect_at_once(server: Server) -> None:
    office = server.office()
    name = f"sari-{office.opd}"
    _who, old = add_user(server.ctx, name, opd=office.opd, roles=("loket",))
    sari = as_(server, old)
    assert statuses(sari) == {200}  # every worker has seen the token

    issued = office.admin.post(f"/api/v1/users/{name}/token", json={})
    assert issued.status_code == 200, issued.text
    new = issued.json()["token"]
    assert statuses(sari) == {401}, "the old token stops working at once, in every worker"
    refused = sari.get("/api/v1/notifications").json()
    assert "sopflow user token NAME" in refused["detail"]
    assert statuses(as_(server, new)) == {200}

    assert office.admin.post(f"/api/v1/users/{name}/disable").status_code == 200
    assert statuses(as_(server, new)) == {401}
    detail = as_(server, new).get("/api/v1/notifications").json()["detail"]
    assert "disabled" in detail
    listed = office.admin.get("/api/v1/users").json()["items"]
    assert {u["name"]: u["status"] for u in listed}[name] == "disabled"
    assert all(u["opd"] == office.opd for u in listed) and "token" not in listed[0]
    assert office.admin.post(f"/api/v1/users/{name}/enable").status_code == 200
    assert statuses(as_(server, new)) == {200}

    trail = office.admin.get(
        "/api/v1/audit/events", params={"opd": office.opd, "since": "2000-01-01"}
    ).json()["items"]
    changes = [(e["type"], e["actor"], e["data"]["user"]) for e in trail
               if e["type"].startswith("user.") and e["data"].get("user") == name]  # fmt: skip
    admin = f"admin-{office.opd}"
    assert changes == [
        ("user.created", None, name),
        ("user.token_issued", admin, name),
        ("user.disabled", admin, name),
        ("user.enabled", admin, name),
    ]


def test_another_office_user_is_not_found_and_bad_expiry_is_422(server: Server) -> None:
    a, b = server.office(), server.office()
    name = f"budi-{a.opd}"
    add_user(server.ctx, name, opd=a.opd, roles=("loket",))
    assert b.admin.post(f"/api/v1/users/{name}/disable").status_code == 404
    assert b.admin.post(f"/api/v1/users/{name}/token", json={}).status_code == 404
    bad = a.admin.post(f"/api/v1/users/{name}/token", json={"expires_in": "whenever"})
    assert bad.status_code == 422 and bad.headers["Content-Type"] == "application/problem+json"
    past = a.admin.post(f"/api/v1/users/{name}/token", json={"expires_in": "2001-01-01"})
    assert past.status_code == 422 and "not in the future" in past.text
    own = a.admin.post(f"/api/v1/users/admin-{a.opd}/disable")
    assert own.status_code == 409, "an admin does not lock themselves out"
    ninety = a.admin.post(f"/api/v1/users/{name}/token", json={"expires_in": "90d"}).json()
    expires = datetime.fromisoformat(ninety["token_expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) < timedelta(days=91)


def test_an_expired_token_is_refused_saying_it_expired(server: Server) -> None:
    office = server.office()
    name = f"ani-{office.opd}"
    add_user(server.ctx, name, opd=office.opd, roles=("loket",))
    _view, token = issue_token(
        server.ctx, None, name, datetime.now(UTC) + timedelta(seconds=2), actor="test"
    )
    client = as_(server, token)
    deadline = time.monotonic() + 60
    while (answer := client.get("/api/v1/notifications")).status_code == 200:
        assert time.monotonic() < deadline, "the token never expired"
        time.sleep(0.2)
    assert answer.status_code == 401
    assert "this token expired at" in answer.json()["detail"]
