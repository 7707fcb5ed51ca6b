"""The database engine: PostgreSQL in production, a SQLite file as the embedded default."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

READONLY = "sopflow_readonly"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for the URL, set up so that both databases behave alike under concurrency."""
    url = normalise_url(url)
    # an error's text never carries the statement's values: they can be personal data
    options.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )
        _serialise_sqlite_writers(engine)
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    # no pre-ping: it costs a round trip on every checkout; a connection the server dropped
    # fails one request and is replaced, and recycling keeps idle ones from going stale
    options.setdefault("pool_recycle", 1800)
    return create_engine(url, **options)


def _owner_only(database: str) -> None:
    """The SQLite file and its WAL readable by their owner only: they hold personal data.

    SQLite creates its files with the process's umask (0644 as a rule); the WAL and shared
    memory files take the database file's mode, so narrowing it once suffices for them.
    """
    for suffix in ("", "-wal", "-shm"):
        path = Path(database + suffix)
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)


def _serialise_sqlite_writers(engine: Engine) -> None:
    # pysqlite's own transaction handling begins lazily and DEFERRED, so two writers can
    # both read a case and then collide on the write; BEGIN IMMEDIATE takes SQLite's write
    # lock up front, the SQLite counterpart of PostgreSQL's row and advisory locks.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # deleted content (an erased case's personal data) is overwritten, not just unlinked
        cursor.execute("PRAGMA secure_delete=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            _owner_only(engine.url.database)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # readers begin DEFERRED: they take no write lock, so a long export or report never
        # holds up the writers (WAL lets them read while others write)
        readonly = connection.get_execution_options().get(READONLY, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
