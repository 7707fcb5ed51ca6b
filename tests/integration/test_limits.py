"""Limits on what one request may send, and what the connection does after a refusal.

Raw sockets against the real gunicorn server (SQLite and PostgreSQL): an HTTP client
library would hide exactly what these tests look at (the `Connection` header, a socket
reused after a refusal, a request line no library would send).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import Server

MIB = 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, object]:
        assert self.headers.get("content-type", "").startswith("application/problem+json"), (
            self.headers,
            self.body[:300],
        )
        body = json.loads(self.body)
        assert body["status"] == self.status, body
        assert body["title"] and body["detail"], body
        return dict(body)


def connect(server: Server) -> socket.socket:
    url = urlsplit(server.base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP/1.1 response with a Content-Length, read off the socket."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without answering: {buffer!r}"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of an answer"
        rest += chunk
    return Answer(status, headers, rest[:length])


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize("authenticated", [True, False], ids=["413", "401"])
def test_refused_oversized_body_leaves_the_connection_usable(
    server: Server, authenticated: bool
) -> None:
    headers = {"Content_Type": "application/json"}
    if authenticated:
        client = server.client("limits-staff", opd="opd-limits", roles=("loket",))
        headers["Authorization"] = client.headers["Authorization"]
    body = json.dumps({"sop": "x", "fields": {"padding": "x" * 2 * MIB}}).encode()
    for _attempt in range(5):
        with connect(server) as sock:
            sock.sendall(request("POST", "/api/v1/cases", body, **headers))
            refused = read_answer(sock)
            assert refused.status == (413 if authenticated else 401)
            refused.problem()
            # keep-alive was promised: the same connection serves the next request
            assert refused.headers.get("connection", "").lower() != "close"
            sock.sendall(request("GET", "/healthz"))
            assert read_answer(sock).status == 200


def test_a_body_that_never_arrives_is_answered_and_the_connection_closed(server: Server) -> None:
    head = request("POST", "/api/v1/cases", Content_Type="application/json")
    head = head.replace(b"Content-Length: 0", b"Content-Length: %d" % (20 * MIB))
    with connect(server) as sock:
        sock.sendall(head + b'{"sop": "')  # and then nothing more
        answer = read_answer(sock)
    assert answer.status in (401, 413)
    answer.problem()
    assert answer.headers.get("connection", "").lower() == "close"


def test_request_line_over_8_kib_is_a_414_problem(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(request("GET", "/public/sops?q=" + "a" * 9000))
        answer = read_answer(sock)
    assert answer.status == 414
    answer.problem()
    assert answer.headers.get("connection", "").lower() == "close"


def test_header_too_large_is_a_431_problem(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(request("GET", "/healthz", X_Padding="p" * 9000))
        answer = read_answer(sock)
    assert answer.status == 431
    answer.problem()
    assert answer.headers.get("connection", "").lower() == "close"


def test_too_many_headers_is_a_431_problem(server: Server) -> None:
    headers = {f"X_Many_{i}": "1" for i in range(150)}
    with connect(server) as sock:
        sock.sendall(request("GET", "/healthz", **headers))
        answer = read_answer(sock)
    assert answer.status == 431
    answer.problem()


def _send_endless_request_line(server: Server, stop: threading.Event) -> None:
    """A request line of 12 MB, sent as fast as the server takes it."""
    piece = b"a" * 65536
    try:
        with connect(server) as sock:
            sock.sendall(b"GET /public/sops?q=")
            sent = 0
            while sent < 12 * MIB and not stop.is_set():
                sock.sendall(piece)
                sent += len(piece)
    except OSError:
        pass  # the server hung up once it had refused the line: what it should do


def test_huge_request_lines_do_not_take_the_service_down(server: Server) -> None:
    stop = threading.Event()
    senders = [
        threading.Thread(target=_send_endless_request_line, args=(server, stop)) for _ in range(2)
    ]
    for sender in senders:
        sender.start()
    try:
        time.sleep(0.2)  # both lines are on their way before the service is asked
        started = time.monotonic()
        answers = [httpx.get(f"{server.base_url}/healthz", timeout=20) for _ in range(4)]
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=30)
    assert [a.status_code for a in answers] == [200] * 4
    # a generous bound: an unbounded line held every worker for about 30 s
    assert elapsed < 10, f"/healthz took {elapsed:.1f} s while the lines were sent"


def test_long_url_within_the_limit_reaches_the_application(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(request("GET", "/public/sops/" + "s" * 8000))
        answer = read_answer(sock)
    assert answer.status in (404, 414, 422)  # the application's own answer
    answer.problem()


def test_a_catastrophic_pattern_costs_one_pass_over_the_value(server: Server) -> None:
    """`^(a+)+$` backtracks exponentially in Python's `re`: 40 characters would take hours."""
    office = server.office(publish=False)
    text = office.sop_text().replace(
        "usia: {type: integer}", "kode: {type: string, pattern: '^(a+)+$'}"
    )
    assert office.publish(text).status_code == 201
    staff = office.staff("loket")
    staff.timeout = httpx.Timeout(20)
    fields = {"nik": "3201234567890001", "nama": "Budi Santoso"}
    refused = staff.post(
        "/api/v1/cases", json={"sop": office.sop, "fields": {**fields, "kode": "a" * 40 + "!"}}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "fields.kode"
    opened = staff.post(
        "/api/v1/cases", json={"sop": office.sop, "fields": {**fields, "kode": "aaa"}}
    )
    assert opened.status_code == 201, opened.text


def test_a_pattern_that_needs_backtracking_is_refused_at_its_line(server: Server) -> None:
    office = server.office(publish=False)
    text = office.sop_text().replace(
        "usia: {type: integer}", "kode: {type: string, pattern: '^(a)\\1$'}"
    )
    answer = office.publish(text)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert "linear time" in error["message"]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("kode:"))
    assert error["line"] == line
