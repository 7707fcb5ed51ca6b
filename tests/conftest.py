"""Shared fixtures and paths.

Tests that need PostgreSQL or Redis skip when the service is absent on a developer's
machine, and fail in CI, where `.ci/run` sets SOPFLOW_TEST_SERVICES=required. There any
skip at all fails: a test that cannot run in CI is fixed or deleted, never left skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
BROKEN = ROOT / "tests" / "sops" / "broken"

POSTGRES_URL = os.environ.get("SOPFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SOPFLOW_TEST_REDIS", "redis://127.0.0.1:6379/15")
SERVICES_REQUIRED = os.environ.get("SOPFLOW_TEST_SERVICES") == "required"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI no test may skip: a skip there is a test that never ran, so it fails."""
    outcome = yield
    _no_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module that skips itself as a whole fails in CI too."""
    outcome = yield
    _no_skip(outcome.get_result())  # type: ignore[attr-defined]


def _no_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if SERVICES_REQUIRED and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped where no test may skip (SOPFLOW_TEST_SERVICES=required): {reason}"
        )


def service_missing(what: str, error: Exception) -> None:
    """Skip on a developer's machine; fail in CI, where the service must be there."""
    message = f"{what} is not reachable: {error}"
    if SERVICES_REQUIRED:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def pg() -> Iterator[psycopg.Connection]:
    """A connection to the test PostgreSQL database."""
    try:
        conn = psycopg.connect(POSTGRES_URL, connect_timeout=3)
    except psycopg.OperationalError as e:
        service_missing("PostgreSQL", e)
    with conn:
        yield conn
