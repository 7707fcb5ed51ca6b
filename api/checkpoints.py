"""The verifiable trail: signed checkpoints, proofs, witness cosignatures and receipts.

Everything under /public reveals no case data: tree sizes, hashes and signatures only.
"""

from __future__ import annotations

from flask import Response, current_app
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from api.http import answer, ctx, principal
from api.schemas import Problem, TrackPath
from engine.service import checkpoints
from engine.settings import Settings

TEXT = "text/plain; charset=utf-8"
BIG = 2**62  # a tree size no trail reaches; larger numbers are refused by validation


def settings() -> Settings:
    """The app's settings (the key and origin checkpoints are signed with)."""
    chosen: Settings = current_app.extensions["sopflow.settings"]
    return chosen


class ConsistencyQuery(BaseModel):
    first: int = Field(alias="from", ge=0, le=BIG, description="the older tree size")
    second: int = Field(alias="to", ge=0, le=BIG, description="the newer tree size")


class Consistency(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first: int = Field(alias="from")
    second: int = Field(alias="to")
    hashes: list[str] = Field(description="base64 SHA-256 hashes, RFC 9162 §2.1.4")


class PublicKey(BaseModel):
    origin: str
    key: str = Field(description="the verifier key `<name>+<hex key id>+<base64 key>`")
    witnesses: list[str] = Field(description="verifier keys of the witnesses trusted here")


class CosignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cosigned: str = Field(
        max_length=16384, description="the checkpoint note with the witness's signature line"
    )
    key: str = Field(max_length=400, description="the witness's verifier key (type 0x04)")


class CosignatureOut(BaseModel):
    size: int
    witness: str
    added: bool


class EventProof(BaseModel):
    leaf_index: int
    leaf_hash: str
    hashes: list[str]


class Receipt(BaseModel):
    checkpoint: str = Field(description="the signed checkpoint note the proofs lead to")
    events: list[EventProof]


class InclusionPath(BaseModel):
    seq: int = Field(ge=1, le=BIG)


class InclusionQuery(BaseModel):
    size: int | None = Field(None, ge=0, le=BIG, description="default: the latest checkpoint")


class Inclusion(EventProof):
    seq: int
    tree_size: int


public = APIBlueprint(
    "checkpoints", __name__, url_prefix="/public", abp_tags=[Tag(name="Verifiable trail")]
)


@public.get(
    "/checkpoint",
    summary="The latest signed checkpoint of the trail (C2SP tlog-checkpoint), cosigned",
    responses={200: None},
)
def latest() -> Response:
    return Response(checkpoints.latest_note(ctx(), settings()), mimetype=TEXT)


@public.get(
    "/checkpoint/key",
    summary="The origin and verifier key that checkpoints are signed with",
    responses={200: PublicKey},
)
def key() -> Response:
    return answer(PublicKey, checkpoints.public_key(settings()))


@public.get(
    "/checkpoint/consistency",
    summary="The proof that the tree at one size is a prefix of the tree at a larger one",
    responses={200: Consistency, 422: Problem},
)
def consistency(query: ConsistencyQuery) -> Response:
    proof = checkpoints.consistency(ctx(), query.first, query.second, settings())
    return answer(Consistency, proof)


@public.post(
    "/checkpoint/cosignature",
    summary="A witness's cosignature (C2SP tlog-cosignature) of a checkpoint, to serve with it",
    responses={200: CosignatureOut, 201: CosignatureOut, 403: Problem, 409: Problem, 422: Problem},
)
def cosign(body: CosignatureIn) -> Response:
    result = checkpoints.add_cosignature(ctx(), body.cosigned, body.key, settings())
    return answer(CosignatureOut, result, 201 if result["added"] else 200)


@public.get(
    "/track/<code>/receipt",
    summary="A case's events as leaf hashes with inclusion proofs; no personal data",
    responses={200: Receipt, 404: Problem},
)
def receipt(path: TrackPath) -> Response:
    return answer(Receipt, checkpoints.receipt(ctx(), path.code, settings()))


audit = APIBlueprint(
    "audit_proofs",
    __name__,
    url_prefix="/api/v1/audit",
    abp_tags=[Tag(name="Audit trail")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 422: Problem},
)


@audit.get(
    "/events/<int:seq>/inclusion",
    summary="The inclusion proof of an event under a checkpoint size",
    responses={200: Inclusion, 404: Problem},
)
def inclusion(path: InclusionPath, query: InclusionQuery) -> Response:
    proof = checkpoints.inclusion(ctx(), principal(), path.seq, query.size, settings())
    return answer(Inclusion, proof)
