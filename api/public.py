"""What citizens read without logging in: service standards and their case's progress."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from api.http import answer, ctx
from api.schemas import Problem, PublicSop, PublicSopList, SopPath, Tracking, TrackPath
from engine.service import queries, sops

bp = APIBlueprint("public", __name__, url_prefix="/public", abp_tags=[Tag(name="Public")])


@bp.get("/sops", summary="Every service standard", responses={200: PublicSopList})
def standards() -> Response:
    return answer(PublicSopList, {"items": sops.public_sops(ctx())})


@bp.get("/sops/<sop>", summary="One service standard", responses={200: PublicSop, 404: Problem})
def standard(path: SopPath) -> Response:
    sop, _row = sops.get_sop(ctx(), None, path.sop)
    return answer(PublicSop, sops.public_view(sop))


@bp.get(
    "/track/<code>",
    summary="A case's progress by its tracking code; no personal data",
    responses={200: Tracking, 404: Problem},
)
def track(path: TrackPath) -> Response:
    return answer(Tracking, queries.track(ctx(), path.code))
