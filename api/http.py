"""What every endpoint shares: the caller, the context, JSON and problem responses."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, date, datetime
from typing import Any

from flask import Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider

from engine.service.context import Context
from engine.service.errors import PreconditionFailed
from engine.service.users import Principal

PROBLEM = "application/problem+json"
# a body refused for its size is still read off the socket, up to this much and this long,
# so that the connection stays in step and serves the next request; beyond, it is closed
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 5.0
# set in the WSGI environ when the connection must close after the answer
CLOSE_AFTER = "sopflow.close_connection"


class JSONProvider(DefaultJSONProvider):
    """ISO 8601 instants with an offset (`2026-03-02T01:30:00Z`), UTF-8 as it is."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a body; text the database or the chain could not hold is refused here."""
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the body nests deeper than any request needs") from None
        _check_text(value)
        return value

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return o.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def _check_text(value: Any) -> None:
    """Refuse NUL characters (PostgreSQL text holds none) and lone surrogates (not UTF-8)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValueError("the body holds a NUL character")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the body holds text that is not valid Unicode") from None


def ctx() -> Context:
    """The service context of this app."""
    context: Context = current_app.extensions["sopflow"]
    return context


def principal() -> Principal:
    """The authenticated caller (set by the app's before-request hook)."""
    who: Principal = g.principal
    return who


def problem(
    status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> Response:
    """An `application/problem+json` response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if errors:
        body["errors"] = errors
    # ASCII escapes: a problem may echo back input, and must never fail to encode it
    response = Response(json.dumps(body, ensure_ascii=True), status=status, mimetype=PROBLEM)
    return response


def if_match() -> int | None:
    """The case version named by `If-Match` (None when absent or `*`)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed(f"`If-Match: {header}` names no version of this case")
    return int(tag)


def with_etag(body: dict[str, Any], status: int = 200, location: str | None = None) -> Response:
    """A case response with its `ETag` (and `Location` when created)."""
    response = jsonify(body)
    response.status_code = status
    response.headers["ETag"] = f'"{body["version"]}"'
    if location:
        response.headers["Location"] = location
    return response


def drain_body(environ: dict[str, Any]) -> bool:
    """Read and drop what is left of the request body; False if it is too long or too slow."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return True
    sock = environ.get("gunicorn.socket")
    previous = sock.gettimeout() if sock is not None else None
    deadline = time.monotonic() + DRAIN_SECONDS
    drained = 0
    try:
        while drained < DRAIN_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if sock is not None:
                sock.settimeout(remaining)
            chunk = stream.read(64 * 1024)
            if not chunk:
                return True
            drained += len(chunk)
        return False
    except (OSError, ValueError):
        return False
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous)
