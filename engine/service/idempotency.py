"""Safe retries: a POST sent again with the same `Idempotency-Key` is answered, not redone.

After the IETF httpapi Idempotency-Key draft. A key belongs to the user who sent it. Its
first use claims it in a short transaction of its own (the row is *in flight*); the request
then runs as usual, and its answer is stored on the row. The same key with the same method,
path and body within `RETAIN` gets that answer again and changes nothing; with another
request, 422; while the first is still in flight, 409. Two identical requests sent at once
cannot both run: only one of them inserts the row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from engine.service.context import Context
from engine.service.errors import Conflict, Invalid
from engine.service.users import Principal
from engine.store.tables import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY = 255
# how long a key answers for its first request; after that it is free again
RETAIN = timedelta(hours=24)
# a claim whose request never finished (its process died) frees the key after this long;
# no request runs that long: the database gives up waiting on a lock well before
IN_FLIGHT = timedelta(minutes=2)
# headers of the first answer that are part of it, and are sent again with it
KEPT_HEADERS = ("Content-Type", "ETag", "Location")


@dataclass(frozen=True)
class Answer:
    """A stored answer: what the first request got."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """A key claimed for a request that is about to run."""

    id: int


def check_key(value: str) -> str | None:
    """Why a header value is not a usable key (1-255 visible ASCII characters), else None."""
    if not 1 <= len(value) <= MAX_KEY:
        return f"`{HEADER}` should be 1 to {MAX_KEY} characters long"
    if not all("!" <= c <= "~" for c in value):
        return f"`{HEADER}` should hold only visible ASCII characters (no spaces)"
    return None


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests the same request: method, path (with query) and body."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim(ctx: Context, principal: Principal, key: str, request_fingerprint: str) -> Claim | Answer:
    """Claim `key` for a request about to run, or the answer its first request got.

    Raises Invalid (422) when the key was used for another request, Conflict (409) while
    its first request is still in flight.
    """
    for _attempt in range(3):
        now = ctx.clock()
        with ctx.uow() as uow:
            row = uow.session.execute(
                select(IdempotencyKey)
                .where(col(IdempotencyKey.user_name) == principal.name)
                .where(col(IdempotencyKey.key) == key)
                .with_for_update()
            ).scalar_one_or_none()
            if row is not None:
                expired = row.created_at <= now - RETAIN or (
                    row.status is None and row.created_at <= now - IN_FLIGHT
                )
                if not expired:
                    if row.fingerprint != request_fingerprint:
                        raise Invalid(
                            f"this `{HEADER}` was used for another request (another method, "
                            "path or body); use a new key for a new request",
                            [{"field": HEADER, "message": "used for another request"}],
                        )
                    if row.status is None:
                        raise Conflict(
                            f"a request with this `{HEADER}` is still being answered; "
                            "retry in a moment"
                        )
                    return Answer(row.status, row.body or "", dict(row.headers))
                # a key past its time is free again: its row starts over
                row.fingerprint = request_fingerprint
                row.created_at = now
                row.status, row.body, row.headers = None, None, {}
            else:
                row = IdempotencyKey(
                    user_name=principal.name,
                    key=key,
                    fingerprint=request_fingerprint,
                    created_at=now,
                )
                uow.session.add(row)
            try:
                uow.commit()
            except IntegrityError:
                # the same key inserted at the same moment by another request: read its row
                uow.rollback()
                continue
            assert row.id is not None
            return Claim(row.id)
    raise Conflict(f"a request with this `{HEADER}` is still being answered; retry in a moment")


def complete(ctx: Context, claimed: Claim, answer: Answer) -> None:
    """Store the answer of a claimed key's request; a retry gets it from now on."""
    with ctx.uow() as uow:
        uow.session.execute(
            update(IdempotencyKey)
            .where(col(IdempotencyKey.id) == claimed.id, col(IdempotencyKey.status).is_(None))
            .values(status=answer.status, body=answer.body, headers=answer.headers)
        )
        uow.commit()


def release(ctx: Context, claimed: Claim) -> None:
    """Free a claimed key whose request failed on the server's side: a retry runs it again."""
    with ctx.uow() as uow:
        uow.session.execute(
            delete(IdempotencyKey).where(
                col(IdempotencyKey.id) == claimed.id, col(IdempotencyKey.status).is_(None)
            )
        )
        uow.commit()
