"""Reports for the inspectorate (and OPD admins for their own office)."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.http import ctx, principal
from api.schemas import AnomalyReport, BottleneckReport, Instant, Problem, SlaReport
from engine.service import anomalies, reports

bp = APIBlueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    abp_tags=[Tag(name="Reports")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 422: Problem},
)


class Period(BaseModel):
    since: Instant | None = None
    until: Instant | None = None


class BottleneckQuery(Period):
    sop: str = Field(max_length=64)


class OfficeQuery(Period):
    opd: str | None = Field(None, max_length=64)


@bp.get(
    "/bottlenecks",
    summary="Per step and per officer: visits, dwell (wall and working time), breaches, waiting",
    responses={200: BottleneckReport, 404: Problem},
)
def bottlenecks(query: BottleneckQuery) -> Response:
    return jsonify(reports.bottlenecks(ctx(), principal(), query.sop, query.since, query.until))


@bp.get(
    "/anomalies",
    summary="Signs of illegal charges and abuse, each with its cases, officer and evidence",
    responses={200: AnomalyReport},
)
def anomaly_report(query: OfficeQuery) -> Response:
    return jsonify(anomalies.anomalies(ctx(), principal(), query.opd, query.since, query.until))


@bp.get(
    "/sla",
    summary="On-time share of step visits per OPD, SOP, step and officer",
    responses={200: SlaReport},
)
def sla(query: OfficeQuery) -> Response:
    return jsonify(reports.sla_compliance(ctx(), principal(), query.opd, query.since, query.until))
