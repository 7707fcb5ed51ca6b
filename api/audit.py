"""The audit trail: reading and verifying it (inspectors; OPD admins for their OPD)."""

from __future__ import annotations

from flask import Response, stream_with_context
from flask_openapi3 import APIBlueprint, Tag

from api.http import answer, ctx, principal
from api.schemas import EventOut, EventQuery, ExportQuery, Page, Problem, Verification, VerifyQuery
from engine.service import checkpoints, exports, moments, queries

XES = "application/xml"

bp = APIBlueprint(
    "audit",
    __name__,
    url_prefix="/api/v1/audit",
    abp_tags=[Tag(name="Audit trail")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 422: Problem},
)


def filters(query: EventQuery | ExportQuery) -> queries.EventFilter:
    """The trail filters of a query string."""
    since, until = moments.instants(ctx(), principal(), query.since, query.until)
    return queries.EventFilter(
        query.opd, query.sop, query.case, query.actor, query.type, since, until
    )


@bp.get("/events", summary="Audit events, oldest first", responses={200: Page[EventOut]})
def events(query: EventQuery) -> Response:
    return answer(
        Page[EventOut],
        queries.audit_events(ctx(), principal(), filters(query), query.limit, query.cursor),
    )


@bp.get(
    "/verify",
    summary="Recompute the hash chain and check it against the latest signed checkpoint; "
    "names the first event that breaks it (`since=checkpoint`: only what was appended after it)",
    responses={200: Verification},
)
def verify(query: VerifyQuery) -> Response:
    return answer(Verification, checkpoints.verify_trail(ctx(), principal(), query.since))


@bp.get(
    "/export",
    summary="The trail as a file for process-mining tools: XES (IEEE 1849) or CSV, streamed",
    responses={200: None},
)
def export(query: ExportQuery) -> Response:
    chosen = filters(query)
    if query.format == "csv":
        body, mimetype, name = exports.csv_lines(ctx(), principal(), chosen), "text/csv", "csv"
    else:
        body, mimetype, name = exports.xes_chunks(ctx(), principal(), chosen), XES, "xes"
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="sopflow-trail.{name}"'
    return response
