"""Watching a running server: /metrics, JSON logs, and the request id in the audit trail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from engine.logs import ROUTINE
from engine.service.context import Context
from engine.service.users import add_user
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from tests.integration.conftest import Server, free_port, start_server


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
            continue  # the lines `sopflow serve` prints for a person on standard output
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


def test_every_line_a_running_service_writes_to_standard_error_is_json(tmp_path: Path) -> None:
    """gunicorn's own lines, Celery's and warnings included; routine chatter kept for DEBUG."""
    url = f"sqlite:///{tmp_path / 'sopflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {**os.environ, "SOPFLOW_DATABASE_URL": url, "SOPFLOW_TIMER_INTERVAL": "0.5"}
    with (tmp_path / "err.txt").open("w") as err, (tmp_path / "out.txt").open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sopflow", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 60
            while True:  # until the embedded worker has swept a few times
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                    if health["timers"]["last_sweep_at"] is not None:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.2)
            time.sleep(2)  # a few more sweeps
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    lines = (tmp_path / "err.txt").read_text().splitlines()
    assert lines
    records = []
    for line in lines:
        record = json.loads(line)  # every line, not only ours
        assert {"ts", "level", "logger", "message"} <= set(record), line
        records.append(record)
    loggers = {r["logger"] for r in records}
    assert {"gunicorn.error", "celery.apps.worker"} <= loggers, loggers
    assert "gunicorn.access" not in loggers  # the app logs each request once, itself
    chatter = [r for r in records if r["logger"] in ROUTINE and r["level"] == "info"]
    assert not chatter, chatter[:3]
