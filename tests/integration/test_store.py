"""Storage on both databases: migrations match the model, instants stay instants."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel

from engine.domain.calendar import calendar_for
from engine.domain.durations import Duration
from engine.domain.model import ID_WORKING
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from engine.store.tables import Opd


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    made = make_engine(url)
    upgrade(made)
    yield made
    if request.param == "postgres":
        with made.begin() as conn:
            conn.exec_driver_sql("DELETE FROM opd WHERE id LIKE 'tz-%%'")
    made.dispose()


def test_migrations_build_exactly_the_tables_the_model_declares(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []


def test_a_deadline_comes_back_as_the_same_instant_whatever_the_session_zone(
    engine: Engine,
) -> None:
    if engine.dialect.name == "postgresql":
        # a server session in WIT must not shift what we read back
        @event.listens_for(engine, "connect")
        def _zone(dbapi_connection: object, _record: object) -> None:
            dbapi_connection.execute("SET TIME ZONE 'Asia/Jayapura'")  # type: ignore[attr-defined]

        engine.dispose()
    start = datetime(2026, 3, 13, 10, 0, tzinfo=timezone(timedelta(hours=7)))
    deadline = calendar_for(ID_WORKING).add(start, Duration.parse("3d"))
    with Session(engine) as session:
        session.add(Opd(id="tz-check", created_at=deadline))
        session.commit()
    with Session(engine) as session:
        stored = session.execute(select(Opd.created_at).where(Opd.id == "tz-check")).scalar_one()
    assert stored == datetime(2026, 3, 25, 3, 0, tzinfo=UTC)
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)


def test_a_naive_datetime_is_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Opd(id="tz-naive", created_at=datetime(2026, 1, 1)))
        with pytest.raises(StatementError, match="naive"):
            session.commit()


def test_a_large_append_stores_what_a_small_one_stores(engine: Engine) -> None:
    """Past `COPY_FROM` events PostgreSQL takes an append by COPY: the rows read back, and
    the chain verifies, exactly as for appends made one INSERT at a time."""
    from engine.domain.audit import Event
    from engine.store import audit

    upgrade(engine)
    at = datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=UTC)

    def events(n: int, tag: str) -> list[Event]:
        return [Event("calendar.day_added", at + timedelta(seconds=i), opd="dinas", actor=tag,
                      data={"i": i, "teks": "Hari Raya Nyepi ✓", "nested": {"b": [1, None]}})
                for i in range(n)]  # fmt: skip

    with Session(engine) as session:
        small = [s for e in events(3, "satu") for s in audit.append(session, [e])]
        large = audit.append(session, events(audit.COPY_FROM, "banyak"))
        session.commit()
        # the database may hold other tests' events: seqs follow on from its head
        assert large == list(range(small[-1] + 1, small[-1] + 1 + audit.COPY_FROM))
        rows = session.execute(select(audit.AuditEvent).order_by(audit.AuditEvent.seq)).scalars()
        stored = [(r.at, r.data, r.actor) for r in rows]
        assert stored[small[0] - 1] == (at, events(1, "satu")[0].data, "satu")
        assert stored[large[5] - 1] == (at + timedelta(seconds=5), events(6, "")[5].data, "banyak")
        result = audit.verify(session)
    assert result.ok and result.checked == large[-1]
