"""Telling people: the inbox each user reads, and each OPD's optional webhook."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from engine.service import webhooks
from engine.service.context import Context
from engine.service.pages import check_limit, decode_cursor, page
from engine.service.users import Principal, ensure_opd
from engine.store.tables import Notification, Opd, WebhookDelivery

MAX_ATTEMPTS = 8
WEBHOOK_TIMEOUT = 5.0
# a claimed delivery is not claimed again for this long: longer than a whole batch of
# posts that each time out (50 × 5 s)
LEASE = timedelta(minutes=10)


def inbox(
    ctx: Context, principal: Principal, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """The caller's notifications, newest first."""
    size = check_limit(limit)
    before = decode_cursor(cursor)
    query = select(Notification).where(Notification.user_name == principal.name)
    if before:
        query = query.where(Notification.id < before)  # type: ignore[operator]
    with ctx.reader() as uow:
        rows = list(
            uow.session.execute(query.order_by(Notification.id.desc()).limit(size)).scalars()  # type: ignore[union-attr]
        )
    items = [
        {
            "id": n.id,
            "case_id": n.case_id,
            "kind": n.kind,
            "message": n.message,
            "created_at": n.created_at,
        }
        for n in rows
    ]
    return page(items, size, rows[-1].id if rows else None)


def set_webhook(ctx: Context, opd: str, url: str | None, allow_private: bool = False) -> str | None:
    """Set (or clear, with None) the URL an OPD's SLA events are posted to.

    Returns the new signing secret, the only time it is shown (None when cleared).
    """
    if url is not None:
        webhooks.check_url(url, allow_private)
    secret = webhooks.new_secret() if url is not None else None
    with ctx.uow() as uow:
        ensure_opd(uow, opd, ctx.clock())
        office = uow.session.get(Opd, opd)
        assert office is not None
        office.webhook_url = url
        office.webhook_secret = secret
        uow.commit()
    return secret


@dataclass(frozen=True)
class _Claimed:
    id: int
    url: str
    payload: dict[str, Any]
    attempts: int
    secret: str | None


def deliver_webhooks(
    ctx: Context,
    client: httpx.Client | None = None,
    batch: int = 50,
    allow_private: bool = False,
) -> int:
    """Post the deliveries that are due; a failure is retried later with a growing delay.

    No transaction is open while posting: due deliveries are claimed (leased) in one short
    transaction, posted, and each outcome recorded in another. A worker that dies while
    posting leaves its claims to be posted again when the lease ends (at least once; the
    `webhook-id` lets a receiver drop a repeat).
    """
    claimed = _claim(ctx, batch)
    if not claimed:
        return 0
    owned = client is None
    http = client or httpx.Client(timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
    outcomes: list[tuple[_Claimed, str | None]] = []
    try:
        for delivery in claimed:
            outcomes.append((delivery, _post(http, delivery, allow_private)))
    finally:
        if owned:
            http.close()
        _record(ctx, outcomes)
    return sum(1 for _delivery, error in outcomes if error is None)


def _claim(ctx: Context, batch: int) -> list[_Claimed]:
    with ctx.uow() as uow:
        now = ctx.clock()
        query = (
            select(WebhookDelivery, Opd.webhook_secret)
            .join(Opd, Opd.id == WebhookDelivery.opd)  # type: ignore[arg-type]
            .where(
                WebhookDelivery.delivered_at.is_(None),  # type: ignore[union-attr]
                WebhookDelivery.attempts < MAX_ATTEMPTS,
                WebhookDelivery.next_attempt_at <= now,  # type: ignore[operator]
            )
            .order_by(WebhookDelivery.id)
            .limit(batch)
        )
        if uow.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=WebhookDelivery, skip_locked=True)  # type: ignore[arg-type]
        claimed = []
        for delivery, secret in uow.session.execute(query).all():
            delivery.attempts += 1
            delivery.next_attempt_at = now + LEASE
            claimed.append(
                _Claimed(delivery.id, delivery.url, delivery.payload, delivery.attempts, secret)
            )
        uow.commit()
    return claimed


def _post(http: httpx.Client, delivery: _Claimed, allow_private: bool) -> str | None:
    """Post one delivery; the error, or None when the receiver took it."""
    if delivery.secret is None:
        return "the office's webhook has no signing secret: set the webhook again"
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    signed = webhooks.sign(delivery.secret, f"msg_{delivery.id}", body)
    try:
        webhooks.post(http, delivery.url, signed, allow_private)
    except (httpx.HTTPError, webhooks.AddressRefused) as e:
        return str(e) or type(e).__name__
    return None


def _record(ctx: Context, outcomes: list[tuple[_Claimed, str | None]]) -> None:
    if not outcomes:
        return
    with ctx.uow() as uow:
        now = ctx.clock()
        for delivery, error in outcomes:
            row = update(WebhookDelivery).where(WebhookDelivery.id == delivery.id)  # type: ignore[arg-type]
            if error is None:
                uow.session.execute(row.values(delivered_at=now, last_error=None))
            else:
                retry = now + timedelta(seconds=2**delivery.attempts)
                uow.session.execute(row.values(last_error=error[:500], next_attempt_at=retry))
        uow.commit()
