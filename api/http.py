"""What every endpoint shares: the caller, the context, JSON and problem responses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider

from engine.service.context import Context
from engine.service.errors import PreconditionFailed
from engine.service.users import Principal

PROBLEM = "application/problem+json"


class JSONProvider(DefaultJSONProvider):
    """ISO 8601 instants with an offset (`2026-03-02T01:30:00Z`), UTF-8 as it is."""

    ensure_ascii = False
    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return o.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


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
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
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
