"""The Flask application factory."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, current_app, g, redirect, request
from flask_openapi3 import Info, OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from api import (
    audit,
    calendar,
    cases,
    checkpoints,
    notifications,
    public,
    reports,
    security,
    sops,
    users,
)
from api.http import JSONProvider, answer, ctx, problem
from api.observe import instrument
from api.schemas import Health, Problem
from engine.service.context import Context
from engine.service.errors import DatabaseUnavailable, ServiceError
from engine.service.health import (
    broker_status,
    calendar_check,
    calendar_status,
    database_status,
    scheduler_status,
)
from engine.service.users import authenticate
from engine.settings import Settings, get_settings

MAX_BODY = 1024 * 1024 + 4096  # an SOP file may be 1 MiB
MAX_URL = 8192
RETRY_AFTER = 2  # seconds a client waits before retrying when the database is unavailable
log = logging.getLogger("sopflow.api")


def create_app(settings: Settings | None = None, context: Context | None = None) -> Flask:
    """Build the API on the given settings (or the environment's), or on a ready context."""
    settings = settings or get_settings()
    app = OpenAPI(
        __name__,
        info=Info(
            title="sopflow",
            version="1",
            description="Run public services by their SOPs: cases, SLA clocks, audit trail.",
        ),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        doc_prefix="/docs",
        doc_url="/openapi.json",
        validation_error_status=422,
        validation_error_model=Problem,
        validation_error_callback=_validation_problem,
    )
    app.json = JSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["sopflow"] = context or Context.from_url(settings.database_url)
    app.extensions["sopflow.settings"] = settings

    for bp in (sops.bp, cases.bp, audit.bp, reports.bp, notifications.bp, public.bp):
        app.register_api(bp)
    app.register_api(checkpoints.public)
    app.register_api(checkpoints.audit)
    app.register_api(calendar.bp)
    app.register_api(calendar.public)
    app.register_api(users.bp)
    calendar_check(app.extensions["sopflow"])
    instrument(app)
    security.install(app, settings)  # before who_is_asking: a guesser is refused unread

    @app.get("/healthz", responses={200: Health, 503: Health}, summary="Database and broker")
    def healthz() -> Response:
        database = database_status(ctx())
        broker = broker_status(settings)
        body: dict[str, Any] = {"status": "ok" if database == broker == "ok" else "degraded"}
        body |= {"database": database, "broker": broker}
        body["timers"] = scheduler_status(ctx(), settings)
        # years whose holidays or Ramadan are only estimated are named, never hidden
        body["calendar"] = calendar_status(ctx())
        return answer(Health, body, 200 if database == "ok" else 503)

    @app.get("/openapi.json", doc_ui=False)
    def openapi_json() -> Response:
        return app.json.response(api_document(app))

    @app.get("/docs", doc_ui=False)
    def docs() -> Response:
        return redirect("/docs/swagger", code=302)  # type: ignore[return-value]

    @app.before_request
    def who_is_asking() -> Response | None:
        if len(request.full_path) > MAX_URL:
            return problem(414, "URI too long", f"the URL is longer than {MAX_URL} characters")
        if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
            return problem(400, "Bad request", "the URL holds a NUL character")
        if request.path.startswith("/api/"):
            g.principal = authenticate(ctx(), request.headers.get("Authorization"))
        return None

    @app.errorhandler(ServiceError)
    def service_error(e: ServiceError) -> Response:
        return problem(e.status, e.title, e.detail, e.errors or None, e.extensions or None)

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(e: DatabaseUnavailable) -> Response:
        log.warning("database unavailable on %s %s: %s", request.method, request.path, e)
        response = problem(
            503,
            "Service unavailable",
            "the database cannot be reached just now; try again shortly (a write with the "
            "same Idempotency-Key is carried out at most once)",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        if e.response is not None and e.response.mimetype == "application/problem+json":
            return e.response
        status = e.code or 500
        detail = e.description or ""
        if status == 413:
            detail = f"the body is larger than {MAX_BODY:,} bytes"
        response = problem(status, e.name, detail)
        for name, value in e.get_headers():
            if name == "Allow":  # a 405 says which methods the path takes
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return problem(500, "Internal server error", "something went wrong; it was logged")

    return app


def _validation_problem(e: ValidationError) -> Response:
    """Pydantic's refusal as problem+json: 400 for a body that is not JSON, 422 otherwise."""
    if request.method in ("POST", "PUT", "PATCH") and request.get_data():
        try:
            body = current_app.json.loads(request.get_data())
        except ValueError as error:
            reason = str(error) if "body" in str(error) else "the body is not valid JSON"
            return problem(400, "Bad request", reason)
        if not isinstance(body, dict):
            return problem(422, "Unprocessable content", "the body must be a JSON object")
    errors = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "message": err["msg"],
        }
        for err in e.errors(include_url=False, include_input=False)
    ]
    return problem(
        422, "Unprocessable content", "the request does not have the expected form", errors
    )


def api_document(app: OpenAPI) -> dict[str, Any]:
    """The OpenAPI document, with what the generator cannot see from signatures."""
    doc: dict[str, Any] = json.loads(json.dumps(app.api_doc, default=str))
    publish = doc["paths"]["/api/v1/sops"]["post"]
    publish["requestBody"] = {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string", "maxLength": 1024 * 1024}}},
    }
    for operations in doc["paths"].values():
        for operation in operations.values():
            for status, documented in operation.get("responses", {}).items():
                content = documented.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")
    for path, operations in doc["paths"].items():
        if path.endswith(("/transitions", "/received")):
            operations["post"].setdefault("parameters", []).append(
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "the case's ETag; a stale one gets 412",
                }
            )
    for path, operations in doc["paths"].items():
        if path.startswith("/api/v1/cases") and "post" in operations:
            post = operations["post"]
            post.setdefault("parameters", []).append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                    "description": "retry safely: the same key with the same request within "
                    "24 hours gets the first answer again and changes nothing; with another "
                    "request 422; while the first is in flight 409",
                }
            )
            answers = post.setdefault("responses", {})
            for status, title in (("400", "Bad Request"), ("409", "Conflict")):
                answers.setdefault(status, _problem_answer(title))
    # answers any operation may get, from the server rather than from the operation itself
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            common = [("414", "URI Too Long"), ("431", "Request Header Fields Too Large")]
            common.append(("503", "Service Unavailable (the database; see Retry-After)"))
            if path.startswith("/api/"):
                common.append(("429", "Too Many Requests (failed authentication; see Retry-After)"))
            for status, title in common:
                answers.setdefault(status, _problem_answer(title))
    return doc


def _problem_answer(title: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": title, "content": {"application/problem+json": {"schema": schema}}}
