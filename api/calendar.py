"""The working calendar register: days off, days made working, Ramadan, office zones.

Changes are for a calendar administrator; every authenticated user may read a year, and
`/public/calendar/{year}` shows it to everyone.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.http import answer, ctx, principal
from api.schemas import Problem
from engine.service import calendars

bp = APIBlueprint(
    "calendar",
    __name__,
    url_prefix="/api/v1/calendar",
    abp_tags=[Tag(name="Calendar")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 422: Problem},
)
public = APIBlueprint(
    "public_calendar", __name__, url_prefix="/public/calendar", abp_tags=[Tag(name="Public")]
)

REASON = Field(min_length=1, max_length=500, description="the decree, e.g. `SKB 3 Menteri 2/2026`")
OPD = Field(None, max_length=64, description="an office's own day; omitted: the whole deployment")


class DayIn(BaseModel):
    date: date
    until: date | None = Field(None, description="last day of a period, inclusive")
    reason: str = REASON
    opd: str | None = OPD
    cuti_bersama: bool = Field(False, description="joint leave: units serving on it work")


class RemovalIn(BaseModel):
    date: date
    reason: str = REASON
    opd: str | None = OPD


class RamadanIn(BaseModel):
    from_: date = Field(alias="from", description="1 Ramadan, as the sidang isbat fixed it")
    to: date = Field(description="the last day of Ramadan")
    reason: str = REASON


class ZoneIn(BaseModel):
    timezone: str = Field(max_length=64, description="Asia/Jakarta, Asia/Makassar, Asia/Jayapura")
    reason: str = REASON


class YearPath(BaseModel):
    year: int = Field(ge=1970, le=2200)


class OpdPath(BaseModel):
    opd: str = Field(max_length=64)


class YearQuery(BaseModel):
    opd: str | None = Field(None, max_length=64, description="include that office's own days")


class Change(BaseModel):
    rescheduled: int = Field(description="open deadlines moved by the change")


class DaysAdded(Change):
    date: date
    until: date
    reason: str
    cuti_bersama: bool
    opd: str | None


class DayRemoved(Change):
    date: date
    reason: str
    opd: str | None


class RamadanSet(Change):
    year: int
    from_: date = Field(alias="from")
    to: date
    reason: str


class ZoneSet(Change):
    opd: str
    timezone: str
    reason: str


class YearOut(BaseModel):
    year: int
    status: str
    holidays: str
    ramadan: str
    items: list[dict[str, Any]]
    zones: dict[str, str] = Field(description="offices with a time zone of their own")


@bp.post("/days", summary="Add non-working days", responses={201: DaysAdded})
def add_day(body: DayIn) -> Response:
    out = calendars.add_days(
        ctx(), principal(), body.date, body.until, body.reason, body.opd, body.cuti_bersama
    )
    return answer(DaysAdded, out, 201)


@bp.post(
    "/removals",
    summary="Make a day a working day again",
    responses={200: DayRemoved, 404: Problem},
)
def remove_day(body: RemovalIn) -> Response:
    removed = calendars.remove_day(ctx(), principal(), body.date, body.reason, body.opd)
    return answer(DayRemoved, removed)


@bp.put("/ramadan/<year>", summary="Fix the dates of a year's Ramadan", responses={200: RamadanSet})
def ramadan(path: YearPath, body: RamadanIn) -> Response:
    out = calendars.set_ramadan(ctx(), principal(), path.year, body.from_, body.to, body.reason)
    return answer(RamadanSet, out)


@bp.put("/zones/<opd>", summary="Set an office's time zone", responses={200: ZoneSet})
def zone(path: OpdPath, body: ZoneIn) -> Response:
    changed = calendars.set_zone(ctx(), principal(), path.opd, body.timezone, body.reason)
    return answer(ZoneSet, changed)


@bp.get("/<year>", summary="A year's non-working days and periods", responses={200: YearOut})
def show(path: YearPath, query: YearQuery) -> Response:
    return answer(YearOut, calendars.year_view(ctx(), path.year, query.opd))


@public.get(
    "/<year>",
    summary="A year's non-working days and periods, decreed or estimated",
    responses={200: YearOut, 422: Problem},
)
def public_year(path: YearPath, query: YearQuery) -> Response:
    return answer(YearOut, calendars.year_view(ctx(), path.year, query.opd))
