"""The peer of bench/timers.py: SLA jobs as Celery ETA tasks on Redis, the way sopflow does not.

A plain Celery app with one task that records how late it started: `time.time() - eta`,
RPUSHed as `"<key> <seconds>"` to a Redis list. bench/timers.py starts a worker on it with

    python -m celery -A bench.timers_peer worker --pool solo ...

(cwd = the repository) and sends the tasks with `apply_async(eta=...)`. Nothing else in
sopflow imports this module.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

BROKER_URL = os.environ.get("BENCH_TIMERS_PEER_BROKER", "redis://127.0.0.1:6379/1")
RESULTS = "bench:timers:peer:lateness"
QUEUE = "bench_timers_peer"

app = Celery("bench_timers_peer", broker=BROKER_URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,  # as sopflow's worker; Celery raises it for each ETA task
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # the default, written out: an unacknowledged (ETA) message goes back to the queue after
    # this long and runs again (celery/celery#2599); the bench's ETAs are seconds ahead
    broker_transport_options={"visibility_timeout": 3600},
)

_client: list[Any] = []


def _redis() -> Any:
    if not _client:
        _client.append(redis.Redis.from_url(BROKER_URL))
    return _client[0]


@app.task(name="bench.timers.due")
def due(key: int, eta: float) -> None:
    """A job due at `eta` (epoch seconds): record how late it started."""
    late = time.time() - eta
    _redis().rpush(RESULTS, f"{key} {late:.6f}")
