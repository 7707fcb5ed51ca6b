"""Users of an office, managed by its admin: list, disable, enable, issue a new token.

An inspector lists every office's users and changes none; the command line
(`sopflow user ...`) manages every user.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.http import answer, ctx, principal
from api.schemas import Problem
from engine.service import users

bp = APIBlueprint(
    "users",
    __name__,
    url_prefix="/api/v1/users",
    abp_tags=[Tag(name="Users")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 404: Problem, 422: Problem},
)


class UserOut(BaseModel):
    name: str
    opd: str | None
    kind: str = Field(description="staff, admin, dpo, inspector or calendar-admin")
    roles: list[str]
    status: str = Field(description="active, disabled or token expired")
    disabled_at: datetime | None
    token_issued_at: datetime
    token_expires_at: datetime | None
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class TokenOut(UserOut):
    token: str = Field(description="the new token, shown only now; the old one no longer works")


class UsersQuery(BaseModel):
    opd: str | None = Field(None, max_length=64, description="an inspector: one office's users")
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the last page")


class NamePath(BaseModel):
    name: str = Field(max_length=200)


class TokenIn(BaseModel):
    expires_in: str | None = Field(
        None,
        max_length=40,
        description="when the new token stops working: a duration from now (`90d`, `12h`, "
        "`2w`), a date (`2027-03-31`, the start of that day UTC) or an instant with its "
        "offset; omitted: never",
    )


@bp.get("", summary="Users of your office (an inspector: all)", responses={200: UserPage})
def list_users(query: UsersQuery) -> Response:
    found = users.list_users(ctx(), principal(), query.opd, query.limit + 1, query.cursor)
    more = len(found) > query.limit
    items = found[: query.limit]
    page = {"items": items, "next_cursor": items[-1]["name"] if more else None}
    return answer(UserPage, page)


@bp.post("/<name>/disable", summary="Disable a user: their token is refused at once",
         responses={200: UserOut, 409: Problem})  # fmt: skip
def disable(path: NamePath) -> Response:
    return answer(UserOut, users.set_disabled(ctx(), principal(), path.name, True))


@bp.post("/<name>/enable", summary="Enable a disabled user again", responses={200: UserOut})
def enable(path: NamePath) -> Response:
    return answer(UserOut, users.set_disabled(ctx(), principal(), path.name, False))


@bp.post("/<name>/token", summary="Issue a new token; the old one stops working at once",
         responses={200: TokenOut})  # fmt: skip
def token(path: NamePath, body: TokenIn) -> Response:
    context = ctx()
    expires_at = users.parse_expiry(body.expires_in, context.clock()) if body.expires_in else None
    view, new = users.issue_token(context, principal(), path.name, expires_at)
    return answer(TokenOut, {**view, "token": new})
