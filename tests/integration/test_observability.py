"""Watching a running server: /metrics, JSON logs, and the request id in the audit trail."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from engine.service.context import Context
from engine.service.users import add_user
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from tests.integration.conftest import Server, start_server


def test_metrics_expose_requests_latency_and_the_state_of_cases_and_timers(
    server: Server,
) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    loket.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"})
    response = server.client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/api/v1/cases/<id>/transitions",status="200"' in text
    assert "sopflow_transition_duration_seconds_bucket" in text
    assert "sopflow_http_request_duration_seconds_bucket" in text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("sopflow_") and "{" not in line.split()[0]
    }
    for gauge in (
        "sopflow_open_cases",
        "sopflow_overdue_steps",
        "sopflow_pending_timers",
        "sopflow_audit_chain_length",
        "sopflow_sweep_duration_seconds",
        "sopflow_timer_lateness_p99_seconds",
    ):
        assert gauge in values, gauge
    assert values["sopflow_open_cases"] >= 1
    assert values["sopflow_audit_chain_length"] >= 3


def test_a_request_id_reaches_the_audit_event_and_the_log(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    response = loket.post(
        f"/api/v1/cases/{case['id']}/transitions",
        json={"name": "terima"},
        headers={"X-Request-Id": "loket-7f3a"},
    )
    assert response.headers["X-Request-Id"] == "loket-7f3a"
    history = loket.get(f"/api/v1/cases/{case['id']}/history").json()["items"]
    moved = [e for e in history if e["type"] == "case.transitioned"]
    assert moved[0]["data"]["request_id"] == "loket-7f3a"
    generated = loket.get(f"/api/v1/cases/{case['id']}").headers["X-Request-Id"]
    assert len(generated) == 32
    assert server.log is not None
    lines = json_lines(server.log.read_text())
    mine = [line for line in lines if line.get("request_id") == "loket-7f3a"]
    assert mine and mine[0]["status"] == 200 and mine[0]["route"].endswith("/transitions")


def json_lines(text: str) -> list[dict[str, object]]:
    """The JSON objects of a log, one a line; other processes' lines are passed over."""
    out = []
    for line in text.split("\n"):
        try:
            value = json.loads(line)
        except ValueError:
            continue  # gunicorn's and Celery's own lines are not JSON
        if isinstance(value, dict):
            out.append(value)
    return out


def test_a_request_longer_than_the_worker_timeout_is_still_answered(
    own_postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # verifying or exporting a long trail takes minutes; the worker's liveness timeout is
    # about the process, and must not cut a request that is working
    monkeypatch.setenv("SOPFLOW_WORKER_TIMEOUT", "2")
    engine = make_engine(own_postgres_url)
    upgrade(engine)
    _inspector, token = add_user(Context(engine), "inspektur", inspector=True)
    engine.dispose()
    for base in start_server(own_postgres_url, tmp_path):
        with psycopg.connect(own_postgres_url) as conn, ThreadPoolExecutor(1) as pool:
            conn.execute("LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE")
            asked = pool.submit(
                httpx.get,
                f"{base}/api/v1/audit/verify",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            time.sleep(6)  # the request waits on the lock, three timeouts long
            assert not asked.done()
            conn.rollback()
            response = asked.result()
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
