"""Guessing tokens is refused, and every answer carries the usual security headers.

The lockout runs on servers of its own with a low limit: the shared servers serve every
test from the same address, and some send hundreds of wrong tokens on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.conftest import REDIS_URL, service_missing
from tests.integration.conftest import Server, server_of_its_own

LIMIT, WINDOW, WORKERS = 5, 8, 2
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


@pytest.fixture(
    scope="module",
    params=[
        ("sqlite", "memory"),
        ("postgres", "memory"),
        pytest.param(("postgres", "redis"), marks=pytest.mark.redis),
    ],
    ids=["sqlite-memory", "postgres-memory", "postgres-redis"],
)
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    """A server that locks a client out after LIMIT failed authentications in WINDOW s."""
    backend, store = request.param
    env = {"SOPFLOW_AUTH_FAILURE_LIMIT": str(LIMIT), "SOPFLOW_AUTH_FAILURE_WINDOW": str(WINDOW)}
    if store == "redis":
        try:
            counts = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
            for key in counts.scan_iter("LIMITS:*sopflow-auth-failure*"):
                counts.delete(key)  # an earlier run's failures from this address
            counts.close()
        except redis.RedisError as e:
            service_missing("Redis", e)
        env["SOPFLOW_BROKER_URL"] = REDIS_URL
    tmp = tmp_path_factory.mktemp(f"{backend}-{store}")
    for running in server_of_its_own(backend, tmp, env):
        yield running, store


def test_repeated_wrong_tokens_get_429_with_retry_after(guarded: tuple[Server, str]) -> None:
    server, store = guarded
    office = server.office()
    staff = office.staff("loket")
    assert staff.get("/api/v1/cases").status_code == 200
    # each gunicorn worker counts for itself when the counts are in memory; with one
    # connection per guess, the guesses reach whichever worker takes them
    failures = LIMIT if store == "redis" else LIMIT * WORKERS

    def guess(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{server.base_url}/api/v1/cases", headers=headers, timeout=30)

    statuses: list[int] = []
    while statuses.count(401) < failures:
        assert len(statuses) < 500, statuses
        statuses.append(guess(f"guess-{len(statuses)}").status_code)
    assert set(statuses) <= {401, 429}, statuses
    if store == "redis":  # one count for all workers: exactly LIMIT failures, then 429
        assert statuses == [401] * LIMIT
    refusals = [guess(f"more-{i}") for i in range(3)] + [guess(None)]
    assert [r.status_code for r in refusals] == [429] * 4
    refused = refusals[0]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 429 and "failed authentications" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    assert refused.headers["Cache-Control"] == "no-store"

    # while locked out, the address is refused before its token is read: a valid one too
    during = staff.get("/api/v1/cases")
    assert during.status_code == 429 and int(during.headers["Retry-After"]) >= 1
    # what needs no token is not locked
    assert staff.get("/healthz").status_code == 200
    assert staff.get("/public/sops").status_code == 200

    # once the failures leave the window, the valid token works again
    deadline = time.monotonic() + WINDOW + 30
    while (answer := staff.get("/api/v1/cases")).status_code == 429:
        assert time.monotonic() < deadline, "the lockout did not end"
        time.sleep(min(int(answer.headers["Retry-After"]), 1))
    assert answer.status_code == 200


def _has_common_headers(response: httpx.Response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    assert response.headers["Referrer-Policy"] == "no-referrer", response.url
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path", ["/healthz", "/public/sops", "/openapi.json", "/api/v1/nowhere", "/nowhere"]
)
def test_every_answer_carries_the_security_headers(server: Server, path: str) -> None:
    office = server.office()
    staff = office.staff("loket")
    response = staff.get(path)
    _has_common_headers(response)
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


def test_authenticated_answers_are_not_stored(server: Server) -> None:
    office = server.office()
    staff = office.staff("loket")
    case = office.open_case(staff)
    anonymous = server.client()
    for response in (
        staff.get("/api/v1/cases"),
        staff.get(f"/api/v1/cases/{case['id']}"),
        staff.post("/api/v1/cases", json={"sop": office.sop, "fields": {}}),
        anonymous.get("/api/v1/cases"),
    ):
        _has_common_headers(response)
        assert response.headers["Cache-Control"] == "no-store", response.url
    assert "no-store" not in server.client().get("/public/sops").headers.get("Cache-Control", "")


def _sha256(block: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"


def test_the_docs_page_has_a_strict_policy_that_lets_it_work(server: Server) -> None:
    docs = server.client()
    page = docs.get("/docs/swagger")
    assert page.status_code == 200
    _has_common_headers(page)
    policy = dict(
        (part.split(" ", 1) + [""])[:2]
        for part in (p.strip() for p in page.headers["Content-Security-Policy"].split(";"))
    )
    assert policy["default-src"] == "'none'"
    assert "unsafe-inline" not in str(policy) and "unsafe-eval" not in str(policy)
    assert "*" not in str(policy) and "http" not in str(policy)
    # each inline block of the page is allowed by its hash; nothing else inline is
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    assert scripts and styles
    assert policy["script-src"].split() == ["'self'", *map(_sha256, scripts)]
    assert set(map(_sha256, styles)) < set(policy["style-src"].split())
    assert all(s.startswith("'sha256-") for s in policy["style-src"].split()[1:])
    assert "'self'" in policy["connect-src"]  # the page fetches the OpenAPI document
    # what the page loads is served from here
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        loaded = docs.get(str(page.url.join(src)))
        assert loaded.status_code == 200, src
    assert docs.get(str(page.url.join("openapi.json"))).status_code == 200
