"""The audit trail: reading and verifying it (inspectors; OPD admins for their OPD)."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag

from api.http import ctx, principal
from api.schemas import EventOut, EventQuery, Page, Problem, Verification
from engine.service import queries

bp = APIBlueprint(
    "audit",
    __name__,
    url_prefix="/api/v1/audit",
    abp_tags=[Tag(name="Audit trail")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 422: Problem},
)


@bp.get("/events", summary="Audit events, oldest first", responses={200: Page[EventOut]})
def events(query: EventQuery) -> Response:
    return jsonify(
        queries.audit_events(
            ctx(),
            principal(),
            opd=query.opd,
            sop=query.sop,
            case=query.case,
            actor=query.actor,
            type=query.type,
            since=query.since,
            until=query.until,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


@bp.get(
    "/verify",
    summary="Recompute the hash chain; names the first event that breaks it",
    responses={200: Verification},
)
def verify() -> Response:
    return jsonify(queries.verify_trail(ctx(), principal()))
