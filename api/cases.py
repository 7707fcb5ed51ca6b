"""Cases: opening them, moving them, documents, payments, history."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from api import idempotency
from api.http import answer, ctx, if_match, principal, with_etag
from api.schemas import (
    BillCreate,
    BillIssued,
    CaseCreate,
    CaseOut,
    CasePath,
    CaseQuery,
    DocumentsReceived,
    ErasureCreate,
    ErasureOut,
    EventList,
    Page,
    PaymentCreate,
    PaymentList,
    PaymentOut,
    PersonalData,
    Problem,
    TransitionFire,
)
from engine.service import cases, personal, queries

bp = APIBlueprint(
    "cases",
    __name__,
    url_prefix="/api/v1/cases",
    abp_tags=[Tag(name="Cases")],
    abp_security=[{"bearer": []}],
    abp_responses={401: Problem, 403: Problem, 422: Problem},
)
# every POST here may be retried safely with an `Idempotency-Key`
idempotency.guard(bp)


@bp.post("", summary="Open a case on a published SOP of your OPD", responses={201: CaseOut})
def open_case(body: CaseCreate) -> Response:
    case = cases.open_case(ctx(), principal(), body.sop, body.version, body.fields, body.received)
    return with_etag(case, 201, f"/api/v1/cases/{case['id']}")


@bp.get("", summary="Cases you may see, oldest first", responses={200: Page[CaseOut]})
def list_cases(query: CaseQuery) -> Response:
    return answer(
        Page[CaseOut],
        queries.list_cases(
            ctx(),
            principal(),
            sop=query.sop,
            step=query.step,
            status=query.status,
            overdue=query.overdue,
            flagged=query.flagged,
            assignee=query.assignee,
            limit=query.limit,
            cursor=query.cursor,
        ),
    )


@bp.get("/<id>", summary="One case", responses={200: CaseOut, 404: Problem})
def get_case(path: CasePath) -> Response:
    return with_etag(cases.get_case(ctx(), principal(), path.id))


@bp.post(
    "/<id>/transitions",
    summary="Fire a transition; `If-Match` guards against a stale view",
    responses={200: CaseOut, 404: Problem, 409: Problem, 412: Problem},
)
def fire(path: CasePath, body: TransitionFire) -> Response:
    case = cases.fire_transition(
        ctx(), principal(), path.id, body.name, body.comment, body.received, if_match()
    )
    return with_etag(case)


@bp.post(
    "/<id>/received",
    summary="Mark documents (requirements) received without moving the case",
    responses={200: CaseOut, 404: Problem, 409: Problem, 412: Problem},
)
def receive(path: CasePath, body: DocumentsReceived) -> Response:
    return with_etag(
        cases.receive_documents(ctx(), principal(), path.id, body.received, if_match())
    )


@bp.post(
    "/<id>/payments",
    summary="Record a payment; one that differs from the official fee is flagged",
    responses={201: PaymentOut, 404: Problem},
)
def pay(path: CasePath, body: PaymentCreate) -> Response:
    payment = cases.record_payment(
        ctx(), principal(), path.id, body.amount, body.method, body.receipt, body.charge
    )
    return answer(PaymentOut, payment, 201, f"/api/v1/cases/{path.id}/payments")


@bp.post(
    "/<id>/bills",
    summary="Bill a levy (the SKRD); a new bill supersedes the last",
    responses={201: BillIssued, 404: Problem, 409: Problem},
)
def bill(path: CasePath, body: BillCreate) -> Response:
    issued = cases.issue_bill(
        ctx(), principal(), path.id, body.amount, body.reference, body.basis, body.waiver
    )
    return answer(BillIssued, issued, 201, f"/api/v1/cases/{path.id}")


@bp.get("/<id>/payments", summary="Payments recorded on a case", responses={200: PaymentList})
def payments(path: CasePath) -> Response:
    return answer(PaymentList, {"items": cases.list_payments(ctx(), principal(), path.id)})


@bp.get(
    "/<id>/history",
    summary="The case's audit events, oldest first",
    responses={200: EventList, 404: Problem},
)
def history(path: CasePath) -> Response:
    return answer(EventList, {"items": queries.case_history(ctx(), principal(), path.id)})


@bp.post(
    "/<id>/erasure",
    summary="Erase a closed case's personal data (the office's data-protection officer)",
    responses={200: ErasureOut, 404: Problem, 409: Problem},
)
def erase(path: CasePath, body: ErasureCreate) -> Response:
    return answer(ErasureOut, personal.erase_case(ctx(), principal(), path.id, body.reason))


@bp.get(
    "/<id>/personal-data",
    summary="Everything held about the applicant in a case, and what for (the case's office)",
    responses={200: PersonalData, 404: Problem},
)
def personal_data(path: CasePath) -> Response:
    return answer(PersonalData, personal.personal_data(ctx(), principal(), path.id))
