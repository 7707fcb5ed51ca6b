"""Reports for the inspectorate (and OPD admins for their own office)."""

from __future__ import annotations

from datetime import datetime

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.http import answer, ctx, principal
from api.schemas import AnomalyReport, BottleneckReport, Moment, Problem, SlaReport
from engine.service import anomalies, moments, reports

bp = APIBlueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    abp_tags=[Tag(name="Reports")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 422: Problem},
)


class Period(BaseModel):
    since: Moment | None = None
    until: Moment | None = None


def period(query: Period) -> tuple[datetime | None, datetime | None]:
    """The query's `since` and `until` as instants."""
    return moments.instants(ctx(), principal(), query.since, query.until)


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
    report = reports.bottlenecks(ctx(), principal(), query.sop, *period(query))
    return answer(BottleneckReport, report)


@bp.get(
    "/anomalies",
    summary="Signs of illegal charges and abuse, each with its cases, officer and evidence",
    responses={200: AnomalyReport},
)
def anomaly_report(query: OfficeQuery) -> Response:
    report = anomalies.anomalies(ctx(), principal(), query.opd, *period(query))
    return answer(AnomalyReport, report)


@bp.get(
    "/sla",
    summary="On-time share of step visits per OPD, SOP, step and officer",
    responses={200: SlaReport},
)
def sla(query: OfficeQuery) -> Response:
    report = reports.sla_compliance(ctx(), principal(), query.opd, *period(query))
    return answer(SlaReport, report)
