"""Telling people: the inbox each user reads, and each OPD's optional webhook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from engine.service.context import Context
from engine.service.errors import Invalid
from engine.service.pages import check_limit, decode_cursor, page
from engine.service.users import Principal, ensure_opd
from engine.store.tables import Notification, Opd, WebhookDelivery

MAX_ATTEMPTS = 8
WEBHOOK_TIMEOUT = 5.0


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


def set_webhook(ctx: Context, opd: str, url: str | None) -> None:
    """Set (or clear, with None) the URL an OPD's SLA events are posted to."""
    if url is not None and not url.startswith(("http://", "https://")):
        raise Invalid("a webhook is an http(s) URL", [{"field": "url", "message": "http(s)"}])
    with ctx.uow() as uow:
        ensure_opd(uow, opd, ctx.clock())
        office = uow.session.get(Opd, opd)
        assert office is not None
        office.webhook_url = url
        uow.commit()


def deliver_webhooks(ctx: Context, client: httpx.Client | None = None, batch: int = 50) -> int:
    """Post the deliveries that are due; a failure is retried later with a growing delay."""
    owned = client is None
    http = client or httpx.Client(timeout=WEBHOOK_TIMEOUT)
    delivered = 0
    try:
        with ctx.uow() as uow:
            now = ctx.clock()
            query = (
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.delivered_at.is_(None),  # type: ignore[union-attr]
                    WebhookDelivery.attempts < MAX_ATTEMPTS,
                    WebhookDelivery.next_attempt_at <= now,  # type: ignore[operator]
                )
                .order_by(WebhookDelivery.id)
                .limit(batch)
            )
            if uow.session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for delivery in uow.session.execute(query).scalars():
                delivery.attempts += 1
                try:
                    response = http.post(delivery.url, json=delivery.payload)
                    response.raise_for_status()
                except httpx.HTTPError as e:
                    delivery.last_error = str(e)[:500]
                    delivery.next_attempt_at = now + timedelta(seconds=2**delivery.attempts)
                else:
                    delivery.delivered_at = ctx.clock()
                    delivered += 1
            uow.commit()
    finally:
        if owned:
            http.close()
    return delivered
