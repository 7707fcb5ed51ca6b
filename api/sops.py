"""SOPs: publishing them and reading them back."""

from __future__ import annotations

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag

from api.http import answer, ctx, principal
from api.schemas import Problem, SopList, SopOut, SopPath, SopQuery, SopVersionPath
from engine.service import sops

bp = APIBlueprint(
    "sops",
    __name__,
    url_prefix="/api/v1/sops",
    abp_tags=[Tag(name="SOPs")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem},
)


@bp.post(
    "",
    summary="Publish an SOP version (OPD admin); the body is the YAML file",
    responses={200: SopOut, 201: SopOut, 409: Problem, 413: Problem, 422: Problem},
)
def publish() -> Response:
    body, created = sops.publish_sop(ctx(), principal(), request.get_data())
    location = f"/api/v1/sops/{body['sop']}/versions/{body['version']}"
    return answer(SopOut, body, 201 if created else 200, location)


@bp.get("", summary="The latest version of each SOP the caller may see", responses={200: SopList})
def list_sops(query: SopQuery) -> Response:
    return answer(SopList, {"items": sops.list_sops(ctx(), principal(), query.opd)})


@bp.get("/<sop>", summary="The latest version of an SOP", responses={200: SopOut, 404: Problem})
def get_sop(path: SopPath) -> Response:
    sop, row = sops.get_sop(ctx(), principal(), path.sop)
    return answer(SopOut, sops.sop_view(sop, row))


@bp.get(
    "/<sop>/versions/<int:n>",
    summary="One version of an SOP",
    responses={200: SopOut, 404: Problem},
)
def get_version(path: SopVersionPath) -> Response:
    sop, row = sops.get_sop(ctx(), principal(), path.sop, path.n)
    return answer(SopOut, sops.sop_view(sop, row))


@bp.get(
    "/<sop>/diagram",
    summary="The SOP's state machine as Mermaid text (text/plain)",
    responses={404: Problem},
)
def diagram(path: SopPath) -> Response:
    return Response(sops.sop_diagram(ctx(), principal(), path.sop), mimetype="text/plain")
