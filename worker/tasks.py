"""Celery tasks: thin calls into the service layer."""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from engine.service import checkpoints, notifications, personal, timers
from engine.service.context import Context
from engine.settings import get_settings
from worker.app import celery_app

log = logging.getLogger("sopflow.worker")


@lru_cache(maxsize=1)
def context() -> Context:
    """This worker process's service context (one engine and its pool)."""
    return Context.from_url(get_settings().database_url)


# a sweep waits for a rung due within its interval, but sweeps at most this often
TICK = 0.05


@celery_app.task(name="sopflow.sweep")
def sweep() -> int:
    """Fire the SLA timers that are due; then send any webhook deliveries they made.

    Until the interval the beat started it for has passed, it then waits for the next
    timer due within it and sweeps again at that instant: a rung waits for the scheduler's
    phase no more (up to one interval), only for its own due instant.
    """
    ctx = context()
    started = time.monotonic()
    end = started + get_settings().timer_interval
    fired = 0
    while True:
        began = time.monotonic()
        result = timers.sweep(ctx)
        fired += result.fired
        if result.fired:
            log.info("fired %d timer(s) in %d batch(es)", result.fired, result.batches)
        if result.deliveries:
            deliver_webhooks.delay()
        due = timers.next_due(ctx)
        if due is None:
            break
        wake = max(time.monotonic() + (due - ctx.clock()).total_seconds(), began + TICK)
        if wake >= end:
            break  # the next beat's sweep takes it
        time.sleep(max(0.0, wake - time.monotonic()))
    return fired


@celery_app.task(name="sopflow.deliver_webhooks")
def deliver_webhooks() -> int:
    """Post due webhook deliveries (failures are retried by later runs)."""
    allow_private = get_settings().allow_private_webhooks
    return notifications.deliver_webhooks(context(), allow_private=allow_private)


@celery_app.task(name="sopflow.checkpoint")
def checkpoint() -> int:
    """Add new events to the trail's Merkle tree and sign a checkpoint of it."""
    return checkpoints.checkpoint(context(), get_settings())


@celery_app.task(name="sopflow.erase_expired")
def erase_expired() -> int:
    """Erase personal data of closed cases past their SOP's retention (each audited)."""
    erased = personal.erase_expired(context())
    if erased:
        log.info("erased the personal data of %d case(s) past retention", len(erased))
    return len(erased)
