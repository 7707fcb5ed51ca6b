"""What every service function works with: the database and the clock."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from engine.store.db import make_engine
from engine.store.uow import UnitOfWork

# The id of the request being served, set by the API; it is written into the audit events
# the request causes, so a log line and an event can be matched.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def traced(data: dict[str, object]) -> dict[str, object]:
    """Event data with the current request's id, when there is one."""
    current = request_id.get()
    return data if current is None else {**data, "request_id": current}


def utc_now() -> datetime:
    """The wall clock, in UTC: read here and nowhere in the domain."""
    return datetime.now(UTC)


@dataclass
class Context:
    """The database engine and the clock the service layer runs on."""

    engine: Engine
    clock: Callable[[], datetime] = field(default=utc_now)

    @classmethod
    def from_url(cls, url: str, clock: Callable[[], datetime] = utc_now) -> Context:
        """A context on a new engine for `url`."""
        return cls(make_engine(url), clock)

    def uow(self) -> UnitOfWork:
        """A new unit of work (use it as a context manager)."""
        return UnitOfWork(self.engine)

    def reader(self) -> UnitOfWork:
        """A unit of work that only reads: on SQLite it takes no write lock."""
        return UnitOfWork(self.engine, readonly=True)
