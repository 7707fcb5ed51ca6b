"""Each user's inbox: warnings and escalations addressed to them."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.http import answer, ctx, principal
from api.schemas import NotificationOut, Page, Problem
from engine.service import notifications

bp = APIBlueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/notifications",
    abp_tags=[Tag(name="Notifications")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 422: Problem},
)


class InboxQuery(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=100)


@bp.get("", summary="Your notifications, newest first", responses={200: Page[NotificationOut]})
def inbox(query: InboxQuery) -> Response:
    inbox = notifications.inbox(ctx(), principal(), query.limit, query.cursor)
    return answer(Page[NotificationOut], inbox)
