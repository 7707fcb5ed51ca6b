"""Shared fixtures and paths.

Tests that need PostgreSQL or Redis skip when the service is absent on a developer's
machine, and fail in CI, where `.ci/run` sets SOPFLOW_TEST_SERVICES=required.
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
