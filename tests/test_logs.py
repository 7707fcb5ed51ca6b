"""Log lines never carry the values a request failed on."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine.logs import JSONFormatter
from engine.store.db import make_engine

NIK = "3201234567890001"


def test_a_logged_exception_keeps_its_type_and_place_but_not_its_message() -> None:
    try:
        raise ValueError(f"invalid literal for int(): {NIK!r}")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "unexpected error", (), sys.exc_info()
        )
    line = JSONFormatter().format(record)
    assert NIK not in line
    error = json.loads(line)["error"]
    assert "ValueError" in error and "test_logs.py" in error


def test_a_database_error_does_not_quote_the_values_of_its_statement(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (nik TEXT UNIQUE)"))
        connection.execute(text("INSERT INTO t VALUES (:nik)"), {"nik": NIK})
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (:nik)"), {"nik": NIK})
    assert NIK not in str(caught.value)
    engine.dispose()
