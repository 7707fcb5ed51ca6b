"""Who may do what: the role x OPD matrix of every endpoint under /api/v1.

Each test builds two offices, A (owning the SOP and the case) and B (the same roles, another
OPD), and runs the rows of MATRIX it is about as every kind of caller:

    loket@A    staff of A holding `loket`, the role of the case's current step
    teknis@A   staff of A without that role
    admin@A    A's OPD admin (no roles)
    loket@B    staff of B holding `loket`
    admin@B    B's OPD admin
    inspector  the inspectorate (no OPD)

Each row asserts the status, and beyond it:
- a refused write leaves everything it could touch as it was (the case's version, step,
  documents, payments, flags; the number of A's cases; A's latest SOP version), an allowed
  write changes it;
- a 403 or 404 for a known user leaves exactly one `access.denied` event by that user (read
  by an inspector), any other answer none;
- a list shows a non-inspector only their own OPD's items; SEE/HIDE say whether A's are there.

Callers without a valid token (none, unknown, malformed) get 401 on every row, change nothing
and leave no trace. The contract: Known user without the right: 403; a resource of another
OPD the caller may not see: 404; opening a case on another OPD's SOP, or publishing an SOP of
another OPD, is a known user without the right: 403.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.service.users import add_user, set_disabled
from tests.integration.conftest import Office, Server

SEE = "200 listing A's"
HIDE = "200 without A's"
Expected = int | str

CALLERS = ("loket@A", "teknis@A", "admin@A", "loket@B", "admin@B", "inspector")


@dataclass(frozen=True)
class Probe:
    """One request, and what each caller gets for it."""

    method: str
    path: str  # as /openapi.json names it: {sop}, {n}, {id} are filled in per world
    expect: dict[str, Expected]
    query: tuple[tuple[str, str], ...] = ()  # values are templates like the path

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def lists(self) -> bool:
        return self.method == "GET" and self.path in LISTS


def probe(method: str, path: str, *statuses: Expected, **extra: Any) -> Probe:
    """A matrix row: the statuses are in the order of CALLERS."""
    assert len(statuses) == len(CALLERS), f"{method} {path}: one status per caller"
    query = tuple(extra.pop("query", {}).items())
    return Probe(method, path, dict(zip(CALLERS, statuses, strict=True)), query, **extra)


# fmt: off
MATRIX = [
    #                                                  loket  teknis admin  loket  admin  inspector
    #                                                  of A   of A   of A   of B   of B
    probe("POST", "/api/v1/sops",                      403,  403,  201,  403,  403,  403),
    probe("GET",  "/api/v1/sops",                      SEE,  SEE,  SEE,  HIDE, HIDE, SEE),
    probe("GET",  "/api/v1/sops",                      SEE,  SEE,  SEE,  HIDE, HIDE, SEE,
          query={"opd": "{opd}"}),
    probe("GET",  "/api/v1/sops/{sop}",                200,  200,  200,  404,  404,  200),
    probe("GET",  "/api/v1/sops/{sop}/versions/{n}",   200,  200,  200,  404,  404,  200),
    probe("GET",  "/api/v1/sops/{sop}/diagram",        200,  200,  200,  404,  404,  200),
    probe("POST", "/api/v1/cases",                     201,  201,  201,  403,  403,  403),
    probe("GET",  "/api/v1/cases",                     SEE,  SEE,  SEE,  HIDE, HIDE, 200),
    probe("GET",  "/api/v1/cases",                     SEE,  SEE,  SEE,  HIDE, HIDE, SEE,
          query={"sop": "{sop}"}),
    probe("GET",  "/api/v1/cases/{id}",                200,  200,  200,  404,  404,  200),
    probe("POST", "/api/v1/cases/{id}/transitions",    200,  403,  403,  404,  404,  403),
    # documents: a role that works on the case's step; payments: the SOP's fee.collected_by
    # (here by default the first step's role, `loket`)
    probe("POST", "/api/v1/cases/{id}/received",       200,  403,  403,  404,  404,  403),
    probe("POST", "/api/v1/cases/{id}/payments",       201,  403,  403,  404,  404,  403),
    probe("GET",  "/api/v1/cases/{id}/payments",       200,  200,  200,  404,  404,  200),
    # bills: the SOP's fee.billed_by, on a levy; A's SOP has a fixed fee, so A's staff get 409
    probe("POST", "/api/v1/cases/{id}/bills",          409,  409,  409,  404,  404,  403),
    probe("GET",  "/api/v1/cases/{id}/history",        200,  200,  200,  404,  404,  200),
    # personal data: erased only by the office's data-protection officer (none of these);
    # what is held about the applicant is read by the case's own office only
    probe("POST", "/api/v1/cases/{id}/erasure",        403,  403,  403,  404,  404,  403),
    probe("GET",  "/api/v1/cases/{id}/personal-data",  200,  200,  200,  404,  404,  403),
    probe("GET",  "/api/v1/audit/events",              403,  403,  SEE,  403,  HIDE, 200),
    probe("GET",  "/api/v1/audit/events",              403,  403,  SEE,  403,  403,  SEE,
          query={"opd": "{opd}"}),
    probe("GET",  "/api/v1/audit/events",              403,  403,  SEE,  403,  HIDE, SEE,
          query={"case": "{id}"}),
    probe("GET",  "/api/v1/audit/verify",              403,  403,  200,  403,  200,  200),
    # the inclusion proof of the case's first event (of A)
    probe("GET",  "/api/v1/audit/events/{seq}/inclusion", 403, 403, 200, 403,  403,  200),
    probe("GET",  "/api/v1/audit/export",              403,  403,  200,  403,  200,  200),
    probe("GET",  "/api/v1/audit/export",              403,  403,  200,  403,  403,  200,
          query={"opd": "{opd}", "format": "csv"}),
    probe("GET",  "/api/v1/reports/bottlenecks",       403,  403,  200,  404,  404,  200,
          query={"sop": "{sop}"}),
    probe("GET",  "/api/v1/reports/anomalies",         403,  403,  200,  403,  200,  200),
    probe("GET",  "/api/v1/reports/anomalies",         403,  403,  200,  403,  403,  200,
          query={"opd": "{opd}"}),
    probe("GET",  "/api/v1/reports/sla",               403,  403,  200,  403,  200,  200),
    # everyone reads their own inbox, and only their own
    probe("GET",  "/api/v1/notifications",             200,  200,  200,  200,  200,  200),
    # the calendar register: changed only by a calendar administrator (none of these), read
    # by everyone
    probe("POST", "/api/v1/calendar/days",             403,  403,  403,  403,  403,  403),
    probe("POST", "/api/v1/calendar/removals",         403,  403,  403,  403,  403,  403),
    probe("PUT",  "/api/v1/calendar/ramadan/{year}",   403,  403,  403,  403,  403,  403),
    probe("PUT",  "/api/v1/calendar/zones/{opd}",      403,  403,  403,  403,  403,  403),
    probe("GET",  "/api/v1/calendar/{year}",           200,  200,  200,  200,  200,  200),
    # users: an office's admin lists and manages its own; the inspector lists all, changes
    # none; another office's user is not there for anyone else (the target is a user of A)
    probe("GET",  "/api/v1/users",                     403,  403,  SEE,  403,  HIDE, 200),
    probe("GET",  "/api/v1/users",                     403,  403,  SEE,  403,  HIDE, SEE,
          query={"opd": "{opd}"}),
    probe("POST", "/api/v1/users/{name}/disable",      403,  403,  200,  404,  404,  403),
    probe("POST", "/api/v1/users/{name}/enable",       403,  403,  200,  404,  404,  403),
    probe("POST", "/api/v1/users/{name}/token",        403,  403,  200,  404,  404,  403),
]
# fmt: on

# The body of each write: valid, so that only the caller's rights decide. POST /api/v1/sops
# sends A's SOP file as version 2; "{sop}" stands for A's SOP.
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/cases": {
        "sop": "{sop}",
        "fields": {"nik": "3201234567890001", "nama": "Budi Santoso"},
        "received": ["ktp"],
    },
    "/api/v1/cases/{id}/transitions": {"name": "terima"},  # loket's, at pendaftaran
    "/api/v1/cases/{id}/received": {"received": ["denah"]},
    "/api/v1/cases/{id}/payments": {"amount": 50000, "method": "cash"},
    "/api/v1/cases/{id}/erasure": {"reason": "permintaan pemohon"},
    "/api/v1/cases/{id}/bills": {"amount": 5000000, "reference": "SKRD/1", "basis": "Perda 1/2024"},
    "/api/v1/calendar/days": {"date": "2027-01-04", "reason": "SKB 3 Menteri", "opd": "{opd}"},
    "/api/v1/calendar/removals": {"date": "2027-01-01", "reason": "SKB 3 Menteri"},
    "/api/v1/calendar/ramadan/{year}": {"from": "2027-02-08", "to": "2027-03-09", "reason": "x"},
    "/api/v1/calendar/zones/{opd}": {"timezone": "Asia/Makassar", "reason": "WITA"},
    "/api/v1/users/{name}/disable": {},
    "/api/v1/users/{name}/enable": {},
    "/api/v1/users/{name}/token": {"expires_in": "90d"},
}
LISTS = ("/api/v1/sops", "/api/v1/cases", "/api/v1/audit/events", "/api/v1/users")

UNAUTHENTICATED = {
    "anonymous": None,
    "unknown token": "Bearer {unknown}",
    "Basic scheme": "Basic x",
    "Basic with a valid token": "Basic {valid}",
    "valid token without scheme": "{valid}",
    "Bearer alone": "Bearer",
    "Token scheme": "Token {valid}",
}


@dataclass(frozen=True)
class Caller:
    name: str  # the user's name: the trail's `actor`
    opd: str | None
    client: httpx.Client


@dataclass
class World:
    """Office A with a case open, office B, a caller of every kind and an inspector."""

    server: Server
    a: Office
    b: Office
    callers: dict[str, Caller]
    inspector: httpx.Client
    case: dict[str, Any]
    target: str = "someone"  # the user of A a users row acts on

    @classmethod
    def build(cls, server: Server) -> World:
        a, b = server.office(), server.office()
        callers = {}
        for office, tag in ((a, "A"), (b, "B")):
            callers[f"admin@{tag}"] = Caller(f"admin-{office.opd}", office.opd, office.admin)
        for role, office, tag in (("loket", a, "A"), ("teknis", a, "A"), ("loket", b, "B")):
            name = f"{role}-{office.opd}"
            callers[f"{role}@{tag}"] = Caller(name, office.opd, office.staff(role, name=name))
        name = f"inspektur-{a.opd}"
        inspector = server.client(name, inspector=True)
        callers["inspector"] = Caller(name, None, inspector)
        case = a.open_case(callers["loket@A"].client)
        return cls(server, a, b, callers, inspector, case)

    def fill(self, template: str, case_id: str) -> str:
        seq = self.first_seq(case_id) if "{seq}" in template else 0
        return template.format(
            sop=self.a.sop, opd=self.a.opd, n=1, id=case_id, seq=seq, year=2027, name=self.target
        )

    def first_seq(self, case_id: str) -> int:
        """The seq of a case's first event, as the inspectorate reads it."""
        events = self.inspector.get("/api/v1/audit/events", params={"case": case_id}).json()
        return int(events["items"][0]["seq"])

    def body(self, probe: Probe) -> dict[str, Any]:
        """The keyword arguments that carry the write's body."""
        if not probe.writes:
            return {}
        if probe.path == "/api/v1/sops":
            yaml = self.a.sop_text(version=2).encode()
            return {"content": yaml, "headers": {"Content-Type": "application/yaml"}}
        body = BODIES[probe.path]
        names = {"{sop}": self.a.sop, "{opd}": self.a.opd}
        return {"json": {k: names.get(v, v) if isinstance(v, str) else v
                         for k, v in body.items()}}  # fmt: skip

    def send(self, client: httpx.Client, probe: Probe, case_id: str) -> httpx.Response:
        params = {k: self.fill(v, case_id) for k, v in probe.query}
        path = self.fill(probe.path, case_id)
        return client.request(probe.method, path, params=params, **self.body(probe))

    def snapshot(self, case_id: str) -> dict[str, Any]:
        """Everything a write could change, as the inspectorate reads it."""
        params = {"sop": self.a.sop, "limit": 500}
        cases = self.inspector.get("/api/v1/cases", params=params).json()["items"]
        (case,) = [c for c in cases if c["id"] == case_id]
        keys = ("version", "step", "status", "received", "paid_total", "flags")
        users = self.inspector.get("/api/v1/users", params={"opd": self.a.opd, "limit": 500})
        target = [u for u in users.json()["items"] if u["name"] == self.target]
        return {
            **{k: case[k] for k in keys},
            "target user": [(u["status"], u["token_issued_at"]) for u in target],
            "cases of A": len(cases),
            "latest SOP of A": self.inspector.get(f"/api/v1/sops/{self.a.sop}").json()["version"],
        }

    def denials(self, name: str) -> list[dict[str, Any]]:
        """The `access.denied` events of one user, oldest first."""
        response = self.inspector.get(
            "/api/v1/audit/events", params={"type": "access.denied", "actor": name, "limit": 500}
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def listed(self, client: httpx.Client, first: httpx.Response) -> list[Any]:
        """Every item of a list response, following its cursor."""
        items = list(first.json()["items"])
        cursor = first.json().get("next_cursor")
        while cursor:
            more = client.get(first.url, params={**first.url.params, "cursor": cursor})
            items += more.json()["items"]
            cursor = more.json()["next_cursor"]
        return items

    def is_a(self, item: dict[str, Any]) -> bool:
        return item.get("opd") == self.a.opd

    def check(self, who: str, probe: Probe) -> list[str]:
        """Run one row; the problems found, each naming the row."""
        caller, expected = self.callers[who], probe.expect[who]
        label = f"{who} {probe} (expected {expected})"
        case_id = str(self.case["id"])
        if probe.writes and "{id}" in probe.path:
            case_id = str(self.a.open_case(self.callers["loket@A"].client)["id"])
        if probe.writes and "{name}" in probe.path:
            self.target = f"target-{secrets.token_hex(4)}"
            add_user(self.server.ctx, self.target, opd=self.a.opd, roles=("loket",))
            if probe.path.endswith("/enable"):
                set_disabled(self.server.ctx, None, self.target, True, actor="test")
        before = self.snapshot(case_id) if probe.writes else None
        denied_before = len(self.denials(caller.name))

        response = self.send(caller.client, probe, case_id)
        problems = []
        status = 200 if expected in (SEE, HIDE) else expected
        if response.status_code != status:
            return [f"{label}: got {response.status_code} {response.text[:160]}"]
        if status >= 400 and not response.headers["Content-Type"].startswith(
            "application/problem+json"
        ):
            problems.append(f"{label}: the refusal is not problem+json")
        if probe.lists and status == 200:
            if caller.opd is None:
                items = response.json()["items"]  # the inspector: the first page is enough
            else:
                items = self.listed(caller.client, response)
                others = {i["opd"] for i in items} - {caller.opd}
                if others:
                    problems.append(f"{label}: lists items of {sorted(map(str, others))}")
            if expected in (SEE, HIDE) and any(map(self.is_a, items)) != (expected == SEE):
                problems.append(f"{label}: A's items {'missing' if expected == SEE else 'shown'}")
        if before is not None:
            after = self.snapshot(case_id)
            if status >= 400 and after != before:
                problems.append(f"{label}: the refused write changed {before} into {after}")
            if status < 400 and after == before:
                problems.append(f"{label}: the allowed write changed nothing")
        denied = self.denials(caller.name)
        new = denied[denied_before:]
        if len(new) != (1 if status in (403, 404) else 0):
            problems.append(f"{label}: {len(new)} access.denied events by {caller.name}")
        elif new and "{id}" in probe.path and new[0]["case_id"] != case_id:
            problems.append(f"{label}: access.denied names case {new[0]['case_id']}")
        return problems


def run(world: World, prefix: str) -> None:
    """Run every row of MATRIX under `prefix` for every caller; one failure lists them all."""
    rows = [(who, p) for p in MATRIX if p.path.startswith(prefix) for who in CALLERS]
    problems = [problem for who, p in rows for problem in world.check(who, p)]
    assert not problems, f"{len(problems)} of {len(rows)} rows wrong:\n" + "\n".join(problems)


def test_every_api_endpoint_has_a_row_for_every_caller(server: Server) -> None:
    document = server.client().get("/openapi.json").json()
    endpoints = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/api/")
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    covered = {(p.method, p.path) for p in MATRIX}
    assert endpoints - covered == set(), "endpoints without a row in MATRIX"
    assert covered - endpoints == set(), "rows of MATRIX for endpoints the API does not have"
    for p in MATRIX:
        assert set(p.expect) == set(CALLERS), f"{p}: a status for every caller"
        assert not p.writes or p.path in BODIES or p.path == "/api/v1/sops", f"{p}: a body"


def test_sop_endpoints(server: Server) -> None:
    world = World.build(server)
    run(world, "/api/v1/sops")


def test_case_endpoints(server: Server) -> None:
    world = World.build(server)
    run(world, "/api/v1/cases")


def test_audit_endpoints(server: Server) -> None:
    world = World.build(server)
    run(world, "/api/v1/audit")


def test_report_endpoints(server: Server) -> None:
    world = World.build(server)
    run(world, "/api/v1/reports")


def test_notification_endpoints(server: Server) -> None:
    world = World.build(server)
    run(world, "/api/v1/notifications")


def test_calendar_endpoints(server: Server) -> None:
    world = World.build(server)
    run(world, "/api/v1/calendar")


def test_user_endpoints(server: Server) -> None:
    world = World.build(server)
    run(world, "/api/v1/users")


def test_no_valid_token_is_401_everywhere_changes_nothing_and_leaves_no_trace(
    server: Server,
) -> None:
    world = World.build(server)
    _user, valid = add_user(server.ctx, f"valid-{world.a.opd}", opd=world.a.opd, roles=("loket",))
    unknown = secrets.token_urlsafe(32)
    since = datetime.now(UTC)
    problems = []
    for who, header in UNAUTHENTICATED.items():
        value = None if header is None else header.format(unknown=unknown, valid=valid)
        headers = {} if value is None else {"Authorization": value}
        client = httpx.Client(base_url=server.base_url, headers=headers, timeout=30)
        server.clients.append(client)
        for p in MATRIX:
            case_id = str(world.case["id"])
            before = world.snapshot(case_id) if p.writes else None
            response = world.send(client, p, case_id)
            label = f"{who} ({header!r}) {p}"
            if response.status_code != 401:
                problems.append(f"{label}: got {response.status_code} {response.text[:200]}")
            elif not response.headers["Content-Type"].startswith("application/problem+json"):
                problems.append(f"{label}: the 401 is not problem+json")
            if before is not None and world.snapshot(case_id) != before:
                problems.append(f"{label}: the refused write changed the case")
    assert not problems, "\n".join(problems)
    trace = world.inspector.get(
        "/api/v1/audit/events", params={"type": "access.denied", "since": since.isoformat()}
    ).json()["items"]
    assert trace == [], "a 401 leaves no access.denied event"
    in_a = world.inspector.get(
        "/api/v1/audit/events", params={"opd": world.a.opd, "since": since.isoformat()}
    ).json()["items"]
    assert in_a == [], "a 401 leaves no event at all"
