"""Watching the API: Prometheus metrics, JSON logs, and a request id that reaches the trail."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterator

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.http import ctx
from engine.service.context import request_id
from engine.service.health import gauges

log = logging.getLogger("sopflow.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter(
    "sopflow_http_requests", "HTTP requests by route and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "sopflow_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=_BUCKETS,
)
TRANSITIONS = Histogram(
    "sopflow_transition_duration_seconds",
    "Latency of POST /api/v1/cases/{id}/transitions",
    buckets=_BUCKETS,
)


class _Database(Collector):
    """Gauges read from the database at scrape time (they are the same for every worker)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.app.app_context():
            values = gauges(ctx())
        helps = {
            "open_cases": "Cases not yet closed",
            "overdue_steps": "Open cases past their step's time standard",
            "pending_timers": "SLA rungs waiting to fall due",
            "audit_chain_length": "Events in the audit hash chain",
            "sweep_duration_seconds": "How long the last timer sweep took",
            "timers_fired_total": "SLA rungs fired since the database was created",
            "timer_lateness_p50_seconds": "Median delay from due to fired, last 1,000 rungs",
            "timer_lateness_p99_seconds": "99th percentile of that delay",
        }
        for name, value in values.items():
            yield GaugeMetricFamily(f"sopflow_{name}", helps[name], value=value)


def instrument(app: Flask) -> None:
    """Request ids, JSON access logs and Prometheus metrics for every request."""
    database = _Database(app)

    @app.before_request
    def start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_token = request_id.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(request.method, route).observe(elapsed)
        if route.endswith("/transitions") and request.method == "POST":
            TRANSITIONS.observe(elapsed)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        who = g.get("principal")
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "fields": {
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "user": who.name if who is not None else None,
                }
            },
        )
        return response

    @app.teardown_request
    def forget(_error: BaseException | None) -> None:
        token = g.pop("request_token", None)
        if token is not None:
            request_id.reset(token)

    @app.get("/metrics", doc_ui=False)  # type: ignore[attr-defined]
    def metrics() -> Response:
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # gunicorn's workers each count their own requests: add them up
            multiprocess.MultiProcessCollector(registry)
        else:
            for metric in (REQUESTS, LATENCY, TRANSITIONS):
                registry.register(metric)
        registry.register(database)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
