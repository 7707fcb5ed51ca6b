"""Helpers for the hostile-input tests: payloads, the server's log, problem+json checks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Server

PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def nested_json(depth: int) -> bytes:
    """An array nested `depth` deep: `[[[...]]]`."""
    return b"[" * depth + b"]" * depth


def nested_object(depth: int) -> bytes:
    """An object nested `depth` deep: `{"a":{"a":...1}}`."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    """A "billion laughs" YAML: each level repeats the previous one `width` times."""
    lines = [b'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = b", ".join([b"*a%d" % (level - 1)] * width)
        lines.append(b"a%d: &a%d [%s]" % (level, level, refs))
    return b"\n".join(lines) + b"\n"


def huge_json(size: int = 2 * MIB) -> bytes:
    """A syntactically valid JSON body of at least `size` bytes."""
    return json.dumps({"sop": "x", "fields": {"padding": "x" * size}}).encode()


def huge_yaml(size: int = 2 * MIB) -> bytes:
    """A syntactically valid YAML document of at least `size` bytes."""
    return b"sop: x\ntitle: " + b"x" * size + b"\n"


@dataclass
class ServerLog:
    """The gunicorn log of a running test server: what it wrote since a mark."""

    path: Path | None

    @classmethod
    def of(cls, server: Server, tmp_path_factory: pytest.TempPathFactory) -> ServerLog:
        port = server.base_url.rsplit(":", 1)[-1]
        found = sorted(tmp_path_factory.getbasetemp().glob(f"*/server-{port}.log"))
        return cls(found[0] if found else None)

    def mark(self) -> int:
        return self.path.stat().st_size if self.path else 0

    def since(self, mark: int) -> str:
        """What the server logged about errors after `mark`: messages, exceptions, our frames."""
        if self.path is None:
            return "(server log not found)"
        with self.path.open("rb") as log:
            log.seek(mark)
            text = log.read().decode("utf-8", "replace")
        return summarize_tracebacks(text) or "(no error logged)"


_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*: ")  # `pkg.SomeError: message`
_MARKERS = ("Traceback (most recent call last)", "During handling", "The above exception")


def summarize_tracebacks(text: str) -> str:
    """The error lines of a log: log messages, exception lines, frames of sopflow's own code."""
    kept: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        own_frame = line.startswith('  File "') and "/site-packages/" not in line
        own_frame = own_frame and "/lib/python3" not in line
        if (
            "ERROR" in line
            or "unexpected error" in line
            or line.startswith(_MARKERS)
            or _EXCEPTION.match(line)
            or line.startswith("[SQL:")
        ):
            kept.append(line)
        elif own_frame:
            kept.append(line)
            if i + 1 < len(lines):
                kept.append(lines[i + 1])
    return "\n".join(kept[-60:])


def describe(response: httpx.Response, log: str | None = None) -> str:
    """The request and the answer, for an assertion message."""
    request = response.request
    body = request.content if request.content is not None else b""
    shown = body[:300] + (b"...(%d bytes)" % len(body) if len(body) > 300 else b"")
    message = (
        f"\n{request.method} {str(request.url)[:400]}"
        f"\n  request Content-Type: {request.headers.get('content-type')}"
        f"\n  request body: {shown!r}"
        f"\n-> {response.status_code} {response.headers.get('content-type')}"
        f"\n  {response.content[:500]!r}"
    )
    if log is not None:
        message += f"\n--- server log ---\n{log}"
    return message


def assert_problem(
    response: httpx.Response, expected: set[int] | range, log: ServerLog, mark: int
) -> dict[str, Any]:
    """The answer is one of the `expected` statuses, as an RFC 9457 problem document."""
    status = response.status_code
    trace = log.since(mark) if status >= 500 else None
    assert status in expected, f"expected {sorted(expected)}" + describe(response, trace)
    assert response.headers.get("content-type", "").split(";")[0].strip() == PROBLEM, (
        "not problem+json" + describe(response, trace)
    )
    body = response.json()
    assert isinstance(body, dict), describe(response)
    assert body.get("status") == status, "`status` differs from the HTTP status" + describe(
        response
    )
    assert isinstance(body.get("title"), str) and body["title"], describe(response)
    assert isinstance(body.get("detail"), str), describe(response)
    assert isinstance(body.get("type"), str), describe(response)
    return body
