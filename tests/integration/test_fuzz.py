"""No request, however malformed, gets a 500; every refusal is application/problem+json.

Two parts, both against the real gunicorn server, on SQLite and on PostgreSQL:

1. schemathesis generates requests from the server's own `/openapi.json` (examples, coverage
   and fuzzing phases, positive and negative data) as a staff member holding every role of
   the test SOP, and as an inspector (reads only: every write of theirs is refused up front).
   The parameters' examples name the office's real SOP, open cases and a tracking code, so
   some requests reach real rows. Fixed seed, derandomized, no example database: the same
   requests on every run. Checks: `not_a_server_error`, and every 4xx is problem+json.
2. A table of hand-written hostile requests, each with the statuses it may get.

A 5xx's assertion message carries what the server logged while answering it.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error

from engine.service.users import add_user
from tests.conftest import BROKEN
from tests.integration.conftest import Office, Server
from tests.integration.hostile import (
    PROBLEM,
    ServerLog,
    alias_bomb,
    assert_problem,
    describe,
    huge_json,
    huge_yaml,
    nested_json,
    nested_object,
)

SEED = 20260302
# Examples per operation in the fuzzing phase. The examples and coverage phases send what the
# schema calls for (~850 requests as staff, ~650 as inspector over 24 operations): with these,
# 1155 + 717 requests, 35-60 s per backend depending on the machine's load.
MAX_EXAMPLES = {"staff": 15, "inspector": 5}


@dataclass
class Target:
    """An office with the test SOP published and open cases, and callers of every kind."""

    server: Server
    office: Office
    log: ServerLog
    tokens: dict[str, str]
    clients: dict[str, httpx.Client]
    case: dict[str, Any]
    spare: dict[str, Any]
    fuzz_cases: list[dict[str, Any]] = field(default_factory=list)

    def values(self) -> dict[str, str]:
        return {
            "case": str(self.case["id"]),
            "spare": str(self.spare["id"]),
            "code": str(self.case["tracking_code"]),
            "sop": self.office.sop,
            "opd": self.office.opd,
        }


@pytest.fixture(scope="module")
def target(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Target:
    office = server.office()
    tokens = {}
    for kind, options in {
        "staff": {"opd": office.opd, "roles": ("loket", "teknis", "kasi")},
        "admin": {"opd": office.opd, "admin": True},
        "inspector": {"inspector": True},
    }.items():
        _who, tokens[kind] = add_user(
            server.ctx,
            f"fuzz-{kind}-{secrets.token_hex(3)}",
            **options,  # type: ignore[arg-type]
        )
    clients = {"anonymous": server.client()}
    for kind, token in tokens.items():
        clients[kind] = server.client()
        clients[kind].headers["Authorization"] = f"Bearer {token}"
    case, spare = office.open_case(clients["staff"]), office.open_case(clients["staff"])
    fuzz_cases = [office.open_case(clients["staff"]) for _ in range(3)]
    log = ServerLog.of(server, tmp_path_factory)
    return Target(server, office, log, tokens, clients, case, spare, fuzz_cases)


# ---- 1. schemathesis over /openapi.json ---------------------------------------------------


def problem_json_on_4xx(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is `application/problem+json` with a `status` matching the HTTP one."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.split(";")[0].strip() == PROBLEM, (
        f"{response.status_code} with Content-Type {content_type!r}, not {PROBLEM}"
    )
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"the problem body is not JSON: {response.content[:300]!r}") from e
    assert isinstance(body, dict) and body.get("status") == response.status_code, (
        f"problem body {response.content[:300]!r} does not carry status {response.status_code}"
    )
    assert isinstance(body.get("title"), str) and isinstance(body.get("detail"), str), (
        f"problem body {response.content[:300]!r} lacks `title` or `detail`"
    )
    return None


def with_examples(doc: dict[str, Any], target: Target) -> dict[str, Any]:
    """The document with examples naming real rows, for the examples phase to send."""
    doc = copy.deepcopy(doc)
    case = target.fuzz_cases[0]
    real = {
        "id": [str(c["id"]) for c in target.fuzz_cases],
        "sop": [target.office.sop],
        "n": [1],
        "code": [str(case["tracking_code"])],
        "opd": [target.office.opd],
        "case": [str(case["id"])],
        "If-Match": ['"1"', '"abc"'],
    }
    bodies = {
        ("/api/v1/cases", "post"): {
            "sop": target.office.sop,
            "fields": {"nik": "3201234567890001", "nama": "Siti Aminah"},
            "received": ["ktp"],
        },
        ("/api/v1/cases/{id}/transitions", "post"): {"name": "terima", "received": ["ktp"]},
        ("/api/v1/cases/{id}/received", "post"): {"received": ["denah"]},
        ("/api/v1/cases/{id}/payments", "post"): {"amount": 50000, "method": "qris"},
        ("/api/v1/sops", "post"): target.office.sop_text(version=2),
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                values = real.get(parameter["name"])
                if values:
                    parameter["examples"] = {
                        f"real{i}": {"value": value} for i, value in enumerate(values)
                    }
            body = bodies.get((path, method))
            if body is not None:
                for media in operation["requestBody"]["content"].values():
                    media["examples"] = {"real": {"value": body}}
    return doc


@dataclass
class FuzzRun:
    """A schemathesis schema bound to one caller, and what was sent with it."""

    schema: schemathesis.BaseSchema
    caller: str
    target: Target
    sent: Counter[str] = field(default_factory=Counter)  # by operation
    phases: Counter[str] = field(default_factory=Counter)


@pytest.fixture(params=["staff", "inspector"])
def fuzz_run(request: pytest.FixtureRequest, server: Server, target: Target) -> Iterator[FuzzRun]:
    caller = request.param
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # requests over the network are slow and the bodies large by nature; the test
            # draws no data of its own and its fixtures are per test, not per example
            "suppress-health-check": ["all"],
            "base-url": server.base_url,
            "headers": {"Authorization": f"Bearer {target.tokens[caller]}"},
            "request-timeout": 20,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES[caller],
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True, "fill-missing": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )
    doc = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()
    if caller == "inspector":  # may change nothing, so only the reads are worth fuzzing
        doc["paths"] = {
            path: {"get": operations["get"]}
            for path, operations in doc["paths"].items()
            if "get" in operations
        }
    schema = schemathesis.openapi.from_dict(with_examples(doc, target), config=config)
    run = FuzzRun(schema, caller, target)
    started = time.monotonic()
    yield run
    elapsed = time.monotonic() - started
    phases = ", ".join(f"{phase} {n}" for phase, n in sorted(run.phases.items()))
    summary = (
        f"schemathesis [{server.backend}, {caller}]: {sum(run.sent.values())} requests "
        f"to {len(run.sent)} operations in {elapsed:.1f} s ({phases})"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + summary)


@pytest.fixture
def fuzz_schema(fuzz_run: FuzzRun) -> schemathesis.BaseSchema:
    return fuzz_run.schema


@pytest.fixture(autouse=True)
def _node_id_for_lazy_schemas(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read `item._nodeid`, which pytest 9.2 renamed."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


lazy_schema = schemathesis.pytest.from_fixture("fuzz_schema")


@lazy_schema.parametrize()
def test_generated_requests_get_no_5xx_and_problem_json_refusals(
    case: Case, fuzz_run: FuzzRun
) -> None:
    log = fuzz_run.target.log
    mark = log.mark()
    fuzz_run.sent[case.operation.label] += 1
    fuzz_run.phases[case.meta.phase.name.value if case.meta else "explicit"] += 1
    response = case.call()
    if response.status_code >= 500:
        print(f"--- server log for {case.method} {case.formatted_path} ---\n{log.since(mark)}")
    case.validate_response(response, checks=[not_a_server_error, problem_json_on_4xx])


# ---- 2. hand-written hostile requests -----------------------------------------------------

Body = bytes | Callable[[Target], bytes] | None
JSON = "application/json"
YAML = "application/yaml"
BAD = frozenset({400, 422})


@dataclass(frozen=True)
class Row:
    """One hostile request and the statuses it may get (4xx are problem+json)."""

    id: str
    method: str
    path: str  # raw (percent-encoded); {case}, {spare}, {code}, {sop}, {opd} are filled in
    expect: frozenset[int] = frozenset({422})
    who: str = "staff"
    body: Body = None
    content_type: str | None = JSON
    headers: tuple[tuple[str, str], ...] = ()
    empty_ok: bool = False  # a 200 with an empty `items` is also a fine answer


def rows_for_bodies(
    paths: dict[str, str], bodies: dict[str, tuple[bytes, frozenset[int]]]
) -> list[Row]:
    return [
        Row(f"{name}->{where}", "POST", path, expect, body=body)
        for where, path in paths.items()
        for name, (body, expect) in bodies.items()
    ]


JSON_ENDPOINTS = {
    "open": "/api/v1/cases",
    "fire": "/api/v1/cases/{case}/transitions",
    "pay": "/api/v1/cases/{case}/payments",
    "receive": "/api/v1/cases/{case}/received",
}
MALFORMED_JSON = {
    "truncated": (b'{"sop": "surat-izin", "fie', frozenset({400})),
    "name-colon": (b'{"name":', frozenset({400})),
    "bare-bracket": (b"[", frozenset({400})),
    "null": (b"null", BAD),
    "json-string": (b'"terima"', BAD),
    "json-number": (b"50000", BAD),
    "json-array": (b'["terima"]', BAD),
    "empty": (b"", BAD),
    "nan": (b'{"name": NaN, "sop": NaN, "amount": NaN, "received": NaN}', BAD),
    "infinity": (b'{"name": Infinity, "amount": -Infinity, "version": Infinity}', BAD),
    "nested-arrays-10000": (nested_json(10_000), BAD),
    "nested-objects-10000": (nested_object(10_000), BAD),
    "non-utf8": (b'{"sop": "\xff\xfe", "name": "\xc3\x28"}', frozenset({400})),
    "trailing-garbage": (b'{"name": "terima"} xyz', frozenset({400})),
}

WRONG_TYPES = [
    # payments
    *[
        Row(f"pay-{name}", "POST", "/api/v1/cases/{case}/payments", body=json.dumps(b).encode())
        for name, b in {
            "amount-string": {"amount": "50000", "method": "cash"},
            "amount-true": {"amount": True, "method": "cash"},
            "amount-float": {"amount": 1.5, "method": "cash"},
            "amount-zero": {"amount": 0, "method": "cash"},
            "amount-negative": {"amount": -50000, "method": "cash"},
            "amount-10^30": {"amount": 10**30, "method": "cash"},
            "amount-null": {"amount": None, "method": "cash"},
            "method-unknown": {"amount": 50000, "method": "bitcoin"},
            "method-missing": {"amount": 50000},
            "receipt-number": {"amount": 50000, "method": "cash", "receipt": 5},
            "receipt-201-chars": {"amount": 50000, "method": "cash", "receipt": "r" * 201},
            "extra-key": {"amount": 50000, "method": "cash", "case_id": "x"},
        }.items()
    ],
    # opening a case
    *[
        Row(f"open-{name}", "POST", "/api/v1/cases", body=json.dumps(b).encode())
        for name, b in {
            "received-string": {"sop": "S", "received": "ktp"},
            "received-numbers": {"sop": "S", "received": [1, None]},
            "received-101": {"sop": "S", "received": ["ktp"] * 101},
            "fields-list": {"sop": "S", "fields": []},
            "fields-string": {"sop": "S", "fields": "nik=1"},
            "sop-null": {"sop": None},
            "sop-number": {"sop": 5},
            "sop-65-chars": {"sop": "s" * 65},
            "sop-missing": {"fields": {}},
            "version-string": {"sop": "S", "version": "1"},
            "version-float": {"sop": "S", "version": 1.0},
            "version-true": {"sop": "S", "version": True},
            "version-zero": {"sop": "S", "version": 0},
            "version-2^31": {"sop": "S", "version": 2**31},
            "version-2^63": {"sop": "S", "version": 2**63},
            "version-10^30": {"sop": "S", "version": 10**30},
            "extra-key": {"sop": "S", "status": "closed"},
            "field-nik-number": {"sop": "S", "fields": {"nik": 3201234567890001, "nama": "x"}},
            "field-usia-string": {
                "sop": "S",
                "fields": {"nik": "3201234567890001", "nama": "x", "usia": "tua"},
            },
            "field-usia-float": {
                "sop": "S",
                "fields": {"nik": "3201234567890001", "nama": "x", "usia": 1e308},
            },
            "field-usia-bool": {
                "sop": "S",
                "fields": {"nik": "3201234567890001", "nama": "x", "usia": True},
            },
            "field-unknown": {
                "sop": "S",
                "fields": {"nik": "3201234567890001", "nama": "x", "agama": {"a": [1]}},
            },
        }.items()
    ],
    # firing a transition and marking documents received
    *[
        Row(f"fire-{name}", "POST", "/api/v1/cases/{case}/transitions", body=json.dumps(b).encode())
        for name, b in {
            "name-number": {"name": 5},
            "name-null": {"name": None},
            "name-65-chars": {"name": "n" * 65},
            "comment-number": {"name": "kembalikan", "comment": 5},
            "comment-2001-chars": {"name": "kembalikan", "comment": "c" * 2001},
            "received-string": {"name": "terima", "received": "ktp"},
            "extra-key": {"name": "terima", "to": "selesai"},
        }.items()
    ],
    *[
        Row(f"receive-{name}", "POST", "/api/v1/cases/{case}/received", body=json.dumps(b).encode())
        for name, b in {
            "empty-list": {"received": []},
            "string": {"received": "ktp"},
            "numbers": {"received": [5]},
            "unknown-document": {"received": ["paspor"]},
        }.items()
    ],
]

# text that is not Unicode, or holds a NUL, is refused with the malformed bodies
NOT_TEXT = frozenset({400})

LONE_SURROGATES = [
    # `\ud800` is valid JSON syntax but no Unicode scalar value: it cannot be encoded to UTF-8
    Row(
        "surrogate-document->receive",
        "POST",
        "/api/v1/cases/{case}/received",
        NOT_TEXT,
        body=b'{"received": ["\\ud800"]}',
    ),
    Row(
        "surrogate-field-value->open",
        "POST",
        "/api/v1/cases",
        NOT_TEXT,
        body=b'{"sop": "S", "fields": {"nik": "3201234567890001", "nama": "\\ud800"}}',
    ),
    Row(
        "surrogate-field-name->open",
        "POST",
        "/api/v1/cases",
        NOT_TEXT,
        body=b'{"sop": "S", "fields": {"\\udfff": 1, "nik": "3201234567890001", "nama": "x"}}',
    ),
    Row(
        "surrogate-name->fire",
        "POST",
        "/api/v1/cases/{case}/transitions",
        NOT_TEXT,
        body=b'{"name": "\\ud800"}',
    ),
]

NOT_NUMBERS = [
    # Python's json reads these; JSON has no such numbers and PostgreSQL's jsonb refuses them
    Row(f"number-field-{name}->open", "POST", "/api/v1/cases", BAD,
        body=b'{"sop": "S", "fields": {"nik": "3201234567890001", "nama": "x", "luas": %s}}'
        % value)
    for name, value in {
        "nan": b"NaN", "infinity": b"Infinity", "minus-infinity": b"-Infinity",
        "1e400": b"1e400", "minus-1e400": b"-1e400",
    }.items()
]  # fmt: skip

NUL_BYTES = [
    # PostgreSQL text cannot hold U+0000: such values must be refused or match nothing
    Row("nul-receipt->pay", "POST", "/api/v1/cases/{spare}/payments", NOT_TEXT,
        body=b'{"amount": 50000, "method": "cash", "receipt": "a\\u0000b"}'),
    Row("nul-sop->open", "POST", "/api/v1/cases", NOT_TEXT, body=b'{"sop": "S\\u0000"}'),
]  # fmt: skip


_versions = itertools.count(100)


def sop_yaml(**replace: str) -> Callable[[Target], bytes]:
    """The test SOP of the target's office, with text replaced (a fresh version)."""

    def build(target: Target) -> bytes:
        text = target.office.sop_text(version=next(_versions))
        for old, new in replace.items():
            assert old in text, old
            text = text.replace(old, new)
        return text.encode()

    return build


def object_tag_yaml(target: Target) -> bytes:
    text = (BROKEN / "object_tag_refused.yaml").read_text()
    text = text.replace("opd: kelurahan", f"opd: {target.office.opd}")
    return text.replace("sop: surat-domisili", f"sop: {target.office.sop}").encode()


def deep_yaml(_target: Target) -> bytes:
    return nested_json(10_000)


def deep_yaml_map(_target: Target) -> bytes:
    return b"{a: " * 5_000 + b"1" + b"}" * 5_000


SOP_FILES = [
    Row("yaml-object-tag", "POST", "/api/v1/sops", who="admin", body=object_tag_yaml,
        content_type=YAML),
    Row("yaml-alias-bomb", "POST", "/api/v1/sops", who="admin", body=alias_bomb(),
        content_type=YAML),
    Row("yaml-non-utf8", "POST", "/api/v1/sops", who="admin", body=b"sop: \xff\xfe\x00 x\n",
        content_type=YAML),
    Row("yaml-utf16", "POST", "/api/v1/sops", who="admin",
        body=lambda t: sop_yaml()(t).decode().encode("utf-16"), content_type=YAML),
    Row("yaml-empty", "POST", "/api/v1/sops", who="admin", body=b"", content_type=YAML),
    Row("yaml-scalar", "POST", "/api/v1/sops", who="admin", body=b"hello", content_type=YAML),
    Row("yaml-list", "POST", "/api/v1/sops", who="admin", body=b"- 1\n- 2\n", content_type=YAML),
    Row("yaml-nested-flow-10000", "POST", "/api/v1/sops", who="admin", body=deep_yaml,
        content_type=YAML),
    Row("yaml-nested-map-5000", "POST", "/api/v1/sops", who="admin", body=deep_yaml_map,
        content_type=YAML),
    Row("yaml-version-huge", "POST", "/api/v1/sops", who="admin",
        body=lambda t: t.office.sop_text(version=10**23).encode(), content_type=YAML),
    # SQLite stores 64-bit integers, PostgreSQL's `integer` 32 bits: refused or published
    Row("yaml-version-2^31", "POST", "/api/v1/sops", frozenset({201, 422}), who="admin",
        body=lambda t: t.office.sop_text(version=2**31).encode(), content_type=YAML),
    Row("yaml-nul-in-title", "POST", "/api/v1/sops", frozenset({201, 422}), who="admin",
        body=sop_yaml(**{"title: Surat Izin Uji": 'title: "Surat\\0Izin"'}), content_type=YAML),
    Row("yaml-as-json", "POST", "/api/v1/sops", BAD | {415}, who="admin",
        body=b'{"sop": 1}', content_type=JSON),
]  # fmt: skip

HUGE_BODIES = [
    Row("json-2MiB->open", "POST", "/api/v1/cases", frozenset({413}), body=huge_json()),
    Row("json-2MiB->fire", "POST", "/api/v1/cases/{case}/transitions", frozenset({413}),
        body=huge_json()),
    Row("yaml-2MiB->publish", "POST", "/api/v1/sops", frozenset({413}), who="admin",
        body=huge_yaml(), content_type=YAML),
]  # fmt: skip

TEN_KB = "q" * 10 * 1024
SQLI = "%27%20OR%201%3D1%20--"  # ' OR 1=1 --
RANDOM_CURSOR = base64.urlsafe_b64encode(random.Random(SEED).randbytes(48)).decode()
JUNK_CURSORS = {
    "cursor-nul-ff": "%00%ff",
    "cursor-random-base64": RANDOM_CURSOR,
    "cursor-base64-json-object": base64.urlsafe_b64encode(b'{"seq": -1}').decode(),
    "cursor-base64-huge-number": base64.urlsafe_b64encode(b"9" * 40).decode(),
    "cursor-negative": "-1",
    "cursor-101-chars": "c" * 101,
    "cursor-position-40-digits": base64.urlsafe_b64encode(b"p" + b"9" * 40).decode(),
    "cursor-position-superscript": base64.urlsafe_b64encode("p\u00b2".encode()).decode(),
    "cursor-position-arabic-digit": base64.urlsafe_b64encode("p\u0663".encode()).decode(),
}

QUERIES = [
    # cases, as staff
    *[
        Row(f"cases-{name}", "GET", f"/api/v1/cases?{query}", expect, empty_ok=empty_ok)
        for name, query, expect, empty_ok in [
            ("limit-negative", "limit=-1", frozenset({422}), False),
            ("limit-zero", "limit=0", frozenset({422}), False),
            ("limit-100000", "limit=100000", frozenset({422}), False),
            ("limit-abc", "limit=abc", frozenset({422}), False),
            ("limit-float", "limit=1.5", frozenset({422}), False),
            ("overdue-maybe", "overdue=maybe", frozenset({422}), False),
            ("flagged-2", "flagged=2", frozenset({422}), False),
            ("status-deleted", "status=deleted", frozenset({422}), False),
            ("sop-10KB", f"sop={TEN_KB}", frozenset({414, 422, 431}), False),
            ("assignee-10KB", f"assignee={TEN_KB}", frozenset({414, 422, 431}), False),
            ("sop-sqli", f"sop={SQLI}", BAD, True),
            ("step-sqli", f"step={SQLI}", BAD, True),
            ("assignee-sqli", f"assignee={SQLI}", BAD, True),
            ("sop-nul", "sop=%00", BAD, True),
            ("assignee-nul", "assignee=a%00b", BAD, True),
            ("sop-invalid-utf8", "sop=%ff%fe", BAD, True),
            *[(name, f"cursor={value}", frozenset({422}), False)
              for name, value in JUNK_CURSORS.items()],
        ]
    ],
    # the audit trail, as inspector and as the office's admin
    *[
        Row(f"events-{name}-as-{who}", "GET", f"/api/v1/audit/events?{query}", expect, who=who,
            empty_ok=empty_ok)
        for who in ("inspector", "admin")
        for name, query, expect, empty_ok in [
            ("limit-negative", "limit=-1", frozenset({422}), False),
            ("limit-100000", "limit=100000", frozenset({422}), False),
            ("limit-abc", "limit=abc", frozenset({422}), False),
            ("since-notadate", "since=notadate", frozenset({422}), False),
            ("until-notadate", "until=notadate", frozenset({422}), False),
            ("since-naive", "since=2026-03-02T08:00:00", BAD, True),
            ("until-date-only", "until=2026-03-02", BAD, True),
            ("since-year-1-plus-14h", "since=0001-01-01T00:00:00%2B14:00", BAD, True),
            ("until-year-9999-minus-14h", "until=9999-12-31T23:59:59-14:00", BAD, True),
            ("actor-10KB", f"actor={TEN_KB}", frozenset({414, 422, 431}), False),
            ("sop-sqli", f"sop={SQLI}", BAD, True),
            ("actor-sqli", f"actor={SQLI}", BAD, True),
            ("type-sqli", f"type={SQLI}", BAD, True),
            ("case-sqli", f"case={SQLI}", BAD, True),
            ("actor-nul", "actor=%00", BAD, True),
            ("type-nul", "type=%00", BAD, True),
            *[(name, f"cursor={value}", frozenset({422}), False)
              for name, value in JUNK_CURSORS.items()],
        ]
    ],
    Row("events-opd-sqli-as-inspector", "GET", f"/api/v1/audit/events?opd={SQLI}", BAD,
        who="inspector", empty_ok=True),
    # the export and the reports take the same instants
    *[
        Row(f"{what}-{name}", "GET", f"{path}{query}", BAD, who="inspector")
        for what, path in {
            "export": "/api/v1/audit/export?format=csv&",
            "bottlenecks": "/api/v1/reports/bottlenecks?sop={sop}&",
            "anomalies": "/api/v1/reports/anomalies?",
        }.items()
        for name, query in {
            "since-notadate": "since=notadate",
            "since-naive": "since=2026-03-02T08:00:00",
            "since-year-1-plus-14h": "since=0001-01-01T00:00:00%2B14:00",
            "until-year-9999-minus-14h": "until=9999-12-31T23:59:59-14:00",
        }.items()
    ],
    Row("export-format-pdf", "GET", "/api/v1/audit/export?format=pdf", who="inspector"),
    Row("sops-opd-sqli", "GET", f"/api/v1/sops?opd={SQLI}", BAD, who="inspector", empty_ok=True),
    Row("sops-opd-nul", "GET", "/api/v1/sops?opd=%00", BAD, who="inspector", empty_ok=True),
]  # fmt: skip

NOT_FOUND = frozenset({404})
PATHS = [
    Row("case-id-emoji", "GET", "/api/v1/cases/%F0%9F%92%A5", NOT_FOUND),
    Row("case-id-5000-chars", "GET", "/api/v1/cases/" + "a" * 5000, frozenset({404, 414, 422})),
    Row("case-id-nul", "GET", "/api/v1/cases/%00", NOT_FOUND),
    Row("case-id-invalid-utf8", "GET", "/api/v1/cases/%ff%fe", NOT_FOUND),
    Row("case-id-sqli", "GET", f"/api/v1/cases/{SQLI}", NOT_FOUND),
    Row("history-emoji", "GET", "/api/v1/cases/%F0%9F%92%A5/history", NOT_FOUND),
    Row("payments-nul", "GET", "/api/v1/cases/%00/payments", NOT_FOUND),
    Row("fire-on-emoji", "POST", "/api/v1/cases/%F0%9F%92%A5/transitions", NOT_FOUND,
        body=b'{"name": "terima"}'),
    Row("pay-on-5000-chars", "POST", "/api/v1/cases/" + "a" * 5000 + "/payments",
        frozenset({404, 414, 422}), body=b'{"amount": 50000, "method": "cash"}'),
    Row("sop-emoji", "GET", "/api/v1/sops/%F0%9F%92%A5", NOT_FOUND),
    Row("sop-nul", "GET", "/api/v1/sops/%00", NOT_FOUND),
    Row("sop-diagram-nul", "GET", "/api/v1/sops/%00/diagram", NOT_FOUND),
    Row("sop-65-chars", "GET", "/api/v1/sops/" + "s" * 65, frozenset({404, 422})),
    Row("sop-version-0", "GET", "/api/v1/sops/{sop}/versions/0", frozenset({404, 422})),
    Row("sop-version-negative", "GET", "/api/v1/sops/{sop}/versions/-1", frozenset({404, 422})),
    Row("sop-version-2^31", "GET", "/api/v1/sops/{sop}/versions/2147483648",
        frozenset({404, 422})),
    Row("sop-version-10^20", "GET", "/api/v1/sops/{sop}/versions/100000000000000000000",
        frozenset({404, 422})),
    Row("sop-version-abc", "GET", "/api/v1/sops/{sop}/versions/abc", frozenset({404, 422})),
    Row("public-sop-nul", "GET", "/public/sops/%00", NOT_FOUND, who="anonymous"),
    Row("public-sop-emoji", "GET", "/public/sops/%F0%9F%92%A5", NOT_FOUND, who="anonymous"),
    Row("track-nul", "GET", "/public/track/%00", NOT_FOUND, who="anonymous"),
    Row("track-emoji", "GET", "/public/track/%F0%9F%92%A5", NOT_FOUND, who="anonymous"),
    Row("track-33-chars", "GET", "/public/track/" + "T" * 33, frozenset({404, 422}),
        who="anonymous"),
    Row("track-sqli", "GET", f"/public/track/{SQLI}", NOT_FOUND, who="anonymous"),
    # unknown paths
    *[Row(f"unknown-{path}", "GET", path, NOT_FOUND) for path in (
        "/nope", "/api/v1/nope", "/api/v2/cases", "/public/nope", "/api/v1/cases/{case}/nope",
        "/api/v1/sops/{sop}/versions/1/nope", "/%F0%9F%92%A5", "/api/v1/cases/{case}/..%2F..",
    )],
]  # fmt: skip

METHODS = [
    Row(f"{method}-{path}", method, path, frozenset({405}),
        body=None if method == "DELETE" else b"{}")
    for method in ("PUT", "DELETE", "PATCH")
    for path in (
        "/api/v1/cases", "/api/v1/sops", "/api/v1/audit/events", "/public/sops",
        "/api/v1/cases/{case}", "/api/v1/sops/{sop}", "/healthz", "/openapi.json",
    )
]  # fmt: skip

PRECONDITIONS = [
    # each body would succeed without the header: a garbage `If-Match` must not be ignored
    Row(f"if-match-{name}->{where}", "POST", path, frozenset({412}), body=body,
        headers=(("If-Match", value),))
    for name, value in {
        "abc": '"abc"', "weak-x": 'W/"x"', "unquoted-word": "abc", "empty": "",
        "comma": ",", "weak-empty": "W/", "negative": '"-1"', "list-of-garbage": '"x", W/"y"',
        "superscript-two": '"\u00b2"', "twenty-digits": '"99999999999999999999"',
    }.items()
    for where, path, body in (
        ("fire", "/api/v1/cases/{case}/transitions", b'{"name": "kembalikan", "comment": "x"}'),
        ("receive", "/api/v1/cases/{case}/received", b'{"received": ["denah"]}'),
    )
]  # fmt: skip

IDEMPOTENCY_KEYS = [
    # each body would succeed without the header: a key that is not 1-255 visible ASCII
    # characters is refused before anything runs
    Row(f"idempotency-key-{name}->{where}", "POST", path, frozenset({400}), body=body,
        headers=(("Idempotency-Key", value),))
    for name, value in {
        "empty": "", "inner-space": "a b", "256-chars": "k" * 256, "tab": "a\tb",
        "list": "a, b",
    }.items()
    for where, path, body in (
        ("open", "/api/v1/cases", lambda t: json.dumps({
            "sop": t.office.sop, "received": ["ktp"],
            "fields": {"nik": "3201234567890001", "nama": "Budi Santoso"},
        }).encode()),
        ("fire", "/api/v1/cases/{case}/transitions", b'{"name": "kembalikan", "comment": "x"}'),
        ("receive", "/api/v1/cases/{case}/received", b'{"received": ["denah"]}'),
        ("pay", "/api/v1/cases/{case}/payments", b'{"amount": 50000, "method": "cash"}'),
    )
]  # fmt: skip

CONTENT_TYPES = [
    Row(f"open-as-{name}", "POST", "/api/v1/cases", BAD | {415}, content_type=ctype,
        body=lambda t: json.dumps({
            "sop": t.office.sop, "received": ["ktp"],
            "fields": {"nik": "3201234567890001", "nama": "Budi Santoso"},
        }).encode())
    for name, ctype in {
        "text-plain": "text/plain", "no-content-type": None,
        "form": "application/x-www-form-urlencoded",
        "multipart-without-boundary": "multipart/form-data",
    }.items()
]  # fmt: skip

AUTH = [
    Row("auth-basic", "GET", "/api/v1/cases", frozenset({401}), who="anonymous",
        headers=(("Authorization", "Basic YTpi"),)),
    Row("auth-bearer-empty", "GET", "/api/v1/cases", frozenset({401}), who="anonymous",
        headers=(("Authorization", "Bearer"),)),
    Row("auth-bearer-sqli", "GET", "/api/v1/cases", frozenset({401}), who="anonymous",
        headers=(("Authorization", "Bearer ' OR 1=1 --"),)),
    Row("auth-bearer-4KB", "GET", "/api/v1/cases", frozenset({401, 431}), who="anonymous",
        headers=(("Authorization", "Bearer " + "t" * 4000),)),
]  # fmt: skip

ROWS = [
    *rows_for_bodies(JSON_ENDPOINTS, MALFORMED_JSON),
    *WRONG_TYPES,
    *LONE_SURROGATES,
    *NOT_NUMBERS,
    *NUL_BYTES,
    *SOP_FILES,
    *HUGE_BODIES,
    *QUERIES,
    *PATHS,
    *METHODS,
    *PRECONDITIONS,
    *IDEMPOTENCY_KEYS,
    *CONTENT_TYPES,
    *AUTH,
]


def send(target: Target, row: Row) -> httpx.Response:
    values = target.values()
    path = row.path
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", value)
    body = row.body(target) if callable(row.body) else row.body
    if body is not None:
        body = body.replace(b'"sop": "S"', b'"sop": "%s"' % values["sop"].encode())
    # a header value outside ASCII goes out as the latin-1 bytes a raw client would send
    headers: dict[str, str | bytes] = {
        name: value if value.isascii() else value.encode("latin-1") for name, value in row.headers
    }
    if row.content_type is not None and body is not None:
        headers["Content-Type"] = row.content_type
    client = target.clients[row.who]
    # the raw target, so that httpx neither normalizes nor re-encodes the path and query
    request = client.build_request(row.method, path, content=body, headers=headers)
    request.url = request.url.copy_with(raw_path=path.encode("ascii"))
    return client.send(request)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_hostile_request_is_refused_with_a_problem(target: Target, row: Row) -> None:
    mark = target.log.mark()
    try:
        response = send(target, row)
    except httpx.TransportError as e:  # the server hung up instead of answering
        pytest.fail(f"{row.method} {row.path[:200]}: no answer ({e!r})\n{target.log.since(mark)}")
    if row.empty_ok and response.status_code == 200:
        assert response.headers["content-type"].startswith(JSON), describe(response)
        assert response.json()["items"] == [], describe(response)
        return
    if 200 <= response.status_code < 300 and response.status_code in row.expect:
        return
    expect = set(row.expect)
    if "%00" in row.path:
        expect.add(400)  # a NUL anywhere in the URL is refused before any lookup
    assert_problem(response, expect, target.log, mark)


def test_object_tag_is_refused_at_its_line_and_column(target: Target) -> None:
    mark = target.log.mark()
    response = target.clients["admin"].post(
        "/api/v1/sops", content=object_tag_yaml(target), headers={"Content-Type": YAML}
    )
    body = assert_problem(response, {422}, target.log, mark)
    errors = body.get("errors") or []
    assert errors, describe(response)
    assert all({"line", "column", "message"} <= set(e) for e in errors), describe(response)
    # the tag is on line 6, column 8 (see the file's `expect:` comment)
    assert any((e["line"], e["column"]) == (6, 8) for e in errors), describe(response)
    assert any("python/object/apply" in e["message"] for e in errors), describe(response)


def test_alias_bomb_is_refused_quickly(target: Target) -> None:
    mark = target.log.mark()
    started = time.monotonic()
    response = target.clients["admin"].post(
        "/api/v1/sops", content=alias_bomb(), headers={"Content-Type": YAML}
    )
    elapsed = time.monotonic() - started
    body = assert_problem(response, {422}, target.log, mark)
    assert body.get("errors"), describe(response)
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert len(response.content) < 64 * 1024, "the expansion leaked into the answer"


def test_hostile_requests_leave_the_case_as_it_was(target: Target) -> None:
    """Run after the table: nothing above was a valid write, so the case has not moved."""
    response = target.clients["staff"].get(f"/api/v1/cases/{target.case['id']}")
    assert response.status_code == 200, describe(response)
    case = response.json()
    assert case["step"] == target.case["step"], case
    assert case["received"] == target.case["received"], case
    assert case["version"] == target.case["version"], case
