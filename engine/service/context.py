"""What every service function works with: the database and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from engine.store.db import make_engine
from engine.store.uow import UnitOfWork


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
