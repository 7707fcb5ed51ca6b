"""Failed authentications per client: past a limit, the client waits before it may ask again.

Counted with the `limits` package over a moving window: in Redis when the broker is Redis
(shared by every server process and host), in memory on the embedded default. In memory
each server process counts for itself, so with gunicorn's N workers a client may make up
to N times the limit before every process refuses it; on the embedded default (one
machine, a couple of workers) that is accepted.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from engine.settings import Settings

log = logging.getLogger("sopflow.ratelimit")

NAMESPACE = "sopflow-auth-failure"


def storage_uri(settings: Settings) -> str:
    """Where the counts are kept: the Redis broker when there is one, else this process."""
    broker = settings.broker_url or ""
    return broker if broker.startswith(("redis://", "rediss://")) else "memory://"


class FailureLimiter:
    """Counts a client's failed authentications and says how long it must wait."""

    def __init__(self, settings: Settings) -> None:
        uri = storage_uri(settings)
        options = {} if uri == "memory://" else {"socket_timeout": 1, "socket_connect_timeout": 1}
        self.storage: Storage = storage_from_string(uri, **options)
        self.limit = RateLimitItemPerSecond(
            settings.auth_failure_limit, settings.auth_failure_window
        )
        self.window = MovingWindowRateLimiter(self.storage)

    def retry_after(self, client: str) -> int | None:
        """Seconds `client` must wait before asking again; None when it may ask now."""
        try:
            if self.window.test(self.limit, NAMESPACE, client):
                return None
            reset = self.window.get_window_stats(self.limit, NAMESPACE, client).reset_time
        except Exception:  # the store is down: authentication must not go down with it
            log.warning("the failed-authentication counts cannot be read", exc_info=True)
            return None
        return max(1, math.ceil(reset - time.time()))

    def failed(self, client: str) -> None:
        """Count one failed authentication from `client`."""
        try:
            self.window.hit(self.limit, NAMESPACE, client)
        except Exception:  # as above: a lost count is better than a refused request
            log.warning("a failed authentication could not be counted", exc_info=True)
