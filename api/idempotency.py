"""`Idempotency-Key` on a blueprint's POSTs: parse the header, claim, answer or replay."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request

from api.http import ctx, principal, problem
from engine.service import idempotency
from engine.service.idempotency import HEADER, KEPT_HEADERS, Answer, Claim

log = logging.getLogger("sopflow.api")


def guard(bp: Blueprint) -> None:
    """Make every POST of `bp` honour `Idempotency-Key`."""
    bp.before_request(_claim)
    bp.after_request(_store)
    bp.teardown_request(_release)


def _claim() -> Response | None:
    if request.method != "POST":
        return None
    key = request.headers.get(HEADER)
    if key is None:
        return None
    reason = idempotency.check_key(key)
    if reason:
        return problem(400, "Bad request", reason)
    query = request.query_string.decode("latin-1")
    path = request.path + (f"?{query}" if query else "")
    fingerprint = idempotency.fingerprint(request.method, path, request.get_data())
    outcome = idempotency.claim(ctx(), principal(), key, fingerprint)
    if isinstance(outcome, Answer):
        response = Response(outcome.body, status=outcome.status, headers=outcome.headers)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    g.idempotency_claim = outcome
    return None


def _store(response: Response) -> Response:
    claimed: Claim | None = g.pop("idempotency_claim", None)
    if claimed is None:
        return response
    try:
        if response.status_code >= 500:
            # the server failed, not the request: a retry runs it again
            idempotency.release(ctx(), claimed)
        else:
            headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
            answer = Answer(response.status_code, response.get_data(as_text=True), headers)
            idempotency.complete(ctx(), claimed, answer)
    except Exception as e:
        # the answer stands; the key stays in flight until it expires. Only the kind of
        # error is logged: the database's message would quote the body, which may hold an
        # applicant's data.
        log.error("could not store the answer to a request with an %s: %s", HEADER, type(e))
    return response


def _release(_error: BaseException | None) -> None:
    claimed: Claim | None = g.pop("idempotency_claim", None)
    if claimed is None:
        return
    try:
        idempotency.release(ctx(), claimed)
    except Exception as e:
        log.error("could not free an %s after a failed request: %s", HEADER, type(e))
