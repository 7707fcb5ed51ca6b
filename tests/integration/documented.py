"""Checks an answer against what the server's own `/openapi.json` documents for it.

Every JSON answer of an operation is validated against that operation's response schema for
its status, with each object that lists its properties closed: a field the answer carries but
the document does not declare is a failure, as is a declared field of the wrong type or a
required one missing. Objects documented as free-form (`dict[str, Any]`, no properties) stay
open. The validator is jsonschema-rs (MIT), the one schemathesis already brings.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema_rs


def closed(schema: Any) -> Any:
    """`schema` with every object that lists its properties refusing any other."""
    if isinstance(schema, dict):
        out = {key: closed(value) for key, value in schema.items()}
        if "properties" in out and out.get("type", "object") == "object":
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


@dataclass
class Documented:
    """The operations of an OpenAPI document, and what answers were checked against it."""

    document: dict[str, Any]
    checked: set[tuple[str, str, str]] = field(default_factory=set)  # (method, path, status)
    problems: list[str] = field(default_factory=list)
    _routes: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    _validators: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.components = closed(copy.deepcopy(self.document.get("components", {})))
        for path in self.document["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
            self._routes.append((re.compile(f"^{pattern}$"), path))
        # literal paths before templated ones: /calendar/ramadan/{year} is not /calendar/{year}
        self._routes.sort(key=lambda route: route[1].count("{"))

    def operations(self) -> set[tuple[str, str, str]]:
        """Every (method, path, status) documented with a JSON answer."""
        found = set()
        for path, methods in self.document["paths"].items():
            for method, operation in methods.items():
                for status, answer in operation.get("responses", {}).items():
                    if "application/json" in answer.get("content", {}):
                        found.add((method.upper(), path, status))
        return found

    def template(self, path: str) -> str | None:
        return next((t for pattern, t in self._routes if pattern.match(path)), None)

    def validator(self, key: tuple[str, str, str]) -> Any:
        if key not in self._validators:
            method, path, status = key
            answer = self.document["paths"][path][method.lower()]["responses"][status]
            schema = closed(answer["content"]["application/json"]["schema"])
            self._validators[key] = jsonschema_rs.validator_for(
                {**schema, "components": self.components}
            )
        return self._validators[key]

    def check(self, response: httpx.Response) -> None:
        """Validate one JSON answer; what is wrong is kept in `problems`."""
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            return
        response.read()
        request = response.request
        path = self.template(request.url.path)
        label = f"{request.method} {request.url.path} {response.status_code}"
        if path is None:
            self.problems.append(f"{label}: the path is not documented")
            return
        key = (request.method, path, str(response.status_code))
        if key not in self.operations():
            self.problems.append(f"{label}: this status is not documented with a JSON answer")
            return
        self.checked.add(key)
        for error in self.validator(key).iter_errors(response.json()):
            where = "/".join(map(str, error.instance_path))
            self.problems.append(f"{label}: at `{where}`: {error.message}")
