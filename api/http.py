"""What every endpoint shares: the caller, the context, JSON and problem responses."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from typing import Any

from flask import Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel, ValidationError

from api.schemas import CaseOut
from engine.service.context import Context
from engine.service.errors import PreconditionFailed
from engine.service.users import Principal

PROBLEM = "application/problem+json"

log = logging.getLogger(__name__)


class JSONProvider(DefaultJSONProvider):
    """ISO 8601 instants with an offset (`2026-03-02T01:30:00Z`), UTF-8 as it is."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a body; text the database or the chain could not hold is refused here."""
        kwargs.setdefault("parse_constant", _not_a_number)
        kwargs.setdefault("parse_float", _finite)
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


def _not_a_number(word: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have and PostgreSQL refuses
    raise ValueError(f"the body holds `{word}`, which is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("the body holds a number too large to represent")
    return value


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
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """An `application/problem+json` response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if errors:
        body["errors"] = errors
    if extensions:
        body |= json.loads(json.dumps(extensions, default=JSONProvider.default))
    # ASCII escapes: a problem may echo back input, and must never fail to encode it
    response = Response(json.dumps(body, ensure_ascii=True), status=status, mimetype=PROBLEM)
    return response


def if_match() -> int | None:
    """The case version named by `If-Match` (None when absent or `*`)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.split(",")[0].strip().removeprefix("W/").strip('"')
    # ASCII digits only: `"²"` is a digit to `str.isdigit` but not to `int`
    if not (tag.isascii() and tag.isdigit()) or len(tag) > 18:
        raise PreconditionFailed(f"`If-Match: {header}` names no version of this case")
    return int(tag)


def answer(
    model: type[BaseModel], body: Any, status: int = 200, location: str | None = None
) -> Response:
    """The service's answer, as the response model that documents it in the OpenAPI document.

    The answer is checked against the model, with no field the model does not declare, so
    the document and the answers cannot drift apart unnoticed: a drift is logged (the field
    names, never their values) and fails tests/integration/test_documented_answers.py, which
    reaches every documented answer; the caller still gets its answer, not a 500. It is
    sent as the service made it: dumping the model instead would reword values the service
    already chose (an integer `3` as `3.0` where a float is declared).
    """
    try:
        model.model_validate(body, extra="forbid")
    except ValidationError as e:
        fields = sorted({".".join(map(str, error["loc"])) for error in e.errors()})
        log.error("the answer of %s drifts from %s at %s", request.path, model.__name__, fields)
    response = jsonify(body)
    response.status_code = status
    if location:
        response.headers["Location"] = location
    return response


def with_etag(body: dict[str, Any], status: int = 200, location: str | None = None) -> Response:
    """A case response with its `ETag` (and `Location` when created)."""
    response = answer(CaseOut, body, status, location)
    response.headers["ETag"] = f'"{body["version"]}"'
    return response
