"""Verifying the trail in ranges, one process each, on PostgreSQL.

From `audit.PARALLEL_FROM` events the chain is verified in ranges of `seq` by processes of
their own, under one snapshot, and the tree's root at a checkpoint's size is joined from
the ranges' subtrees. Lowered here to a few dozen events so that the ranges really split:
the answers (intact, an event altered inside a range or at its edge, a root compared with
a checkpoint's) are exactly the one-process path's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update
from sqlmodel import Session

from engine.domain.audit import Event
from engine.store import audit, chain, tree
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from engine.store.tables import AuditEvent
from tests.integration.conftest import _postgres_database

EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
SIZE = 70  # three processes: ranges [1, 32], [33, 64], [65, 70]
PROCESSES = 3
RANGES = [1, 33, 65]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """A PostgreSQL database of its own holding a trail of SIZE events and its tree."""
    for url in _postgres_database():
        made = make_engine(url)
        upgrade(made)
        start = datetime(2026, 3, 2, 8, tzinfo=UTC)
        events = [
            Event(
                "case.transitioned",
                start + timedelta(minutes=i),
                opd="opd-x",
                sop="izin-x",
                case_id=f"case-{i % 7}",
                actor=f"staff-{i % 3}",
                from_step="a",
                to_step="b",
                data={"amount": 1000 * i, "note": "ß ✓" if i % 5 == 0 else "plain"},
            )
            for i in range(SIZE)
        ]
        with Session(made) as session:
            assert audit.append(session, events) == list(range(1, SIZE + 1))
            tree.lock(session)
            assert tree.extend(session, SIZE) == (0, SIZE)
            session.commit()
        yield made
        made.dispose()


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Three processes from a few dozen events; the first seq of each range scanned."""
    monkeypatch.setattr(audit, "workers", lambda: PROCESSES)
    seen: list[list[int]] = []
    join = audit._verification

    def spy(scans: list[chain.Scan]) -> audit.Verification:
        seen.append([found.first for found in scans])
        return join(scans)

    monkeypatch.setattr(audit, "_verification", spy)
    return seen


def both(monkeypatch: pytest.MonkeyPatch, seen: list[list[int]], run: Any) -> tuple[Any, Any]:
    """`run` on one process, then in ranges; asserts the ranges really split."""
    monkeypatch.setattr(audit, "PARALLEL_FROM", 100_000)
    one = run()
    assert seen[-1] == [1]
    monkeypatch.setattr(audit, "PARALLEL_FROM", 40)
    ranged = run()
    assert seen[-1] == RANGES, seen
    return one, ranged


def test_an_intact_trail_verifies_the_same_in_ranges(
    engine: Engine, split: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as session:
        one, ranged = both(monkeypatch, split, lambda: audit.verify(session))
    assert ranged == one
    assert (ranged.ok, ranged.checked, ranged.first_bad_seq) == (True, SIZE, None), ranged


def flip(value: str) -> str:
    return ("0" if value[0] != "0" else "1") + value[1:]


# what an intruder changes in an event; a restored row goes back as it was
ALTERATIONS: dict[str, Any] = {
    "data": lambda row: {"data": {**row["data"], "amount": 1}},
    "prev_hash": lambda row: {"prev_hash": flip(row["prev_hash"])},
    "hash": lambda row: {"hash": flip(row["hash"])},
}
# in the middle of the 2nd range, at both edges of it, at the start of the last
PLACES = [48, 32, 33, 64, 65]


@pytest.mark.parametrize("seq", PLACES)
@pytest.mark.parametrize("column", list(ALTERATIONS))
def test_an_altered_event_is_named_as_one_process_names_it(
    engine: Engine,
    split: list[list[int]],
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    seq: int,
) -> None:
    with engine.begin() as conn:  # committed: the range processes have their own connections
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        original = dict(conn.execute(select(EVENTS).where(EVENTS.c.seq == seq)).mappings().one())
        conn.execute(
            update(EVENTS).where(EVENTS.c.seq == seq).values(**ALTERATIONS[column](original))
        )
    try:
        with Session(engine) as session:
            one, ranged = both(monkeypatch, split, lambda: audit.verify(session))
            root = tree.root(session, SIZE)
            checked = both(monkeypatch, split, lambda: tree.verify_against(session, SIZE, root))
    finally:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(**original))
    assert ranged == one
    assert (ranged.ok, ranged.first_bad_seq) == (False, seq), ranged
    assert ranged.checked == seq - 1, ranged
    assert ranged.reason is not None and str(seq) in ranged.reason, ranged
    assert checked[1] == checked[0]
    assert (checked[1].ok, checked[1].first_bad_seq) == (False, seq), checked
    with Session(engine) as session:
        assert audit.verify(session, processes=1).ok


def test_a_missing_event_at_a_range_edge_is_named_as_one_process_names_it(
    engine: Engine, split: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seq = 33
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        original = dict(conn.execute(select(EVENTS).where(EVENTS.c.seq == seq)).mappings().one())
        conn.execute(EVENTS.delete().where(EVENTS.c.seq == seq))
    try:
        with Session(engine) as session:
            one, ranged = both(monkeypatch, split, lambda: audit.verify(session))
    finally:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(EVENTS.insert().values(original))
    assert ranged == one
    assert (ranged.ok, ranged.first_bad_seq, ranged.checked) == (False, seq, seq - 1), ranged
    assert ranged.reason == f"event {seq} is missing", ranged


# a checkpoint's size inside the 2nd range, at its end, and the whole trail
@pytest.mark.parametrize("size", [45, 64, SIZE])
def test_a_checkpoint_root_is_checked_the_same_in_ranges(
    engine: Engine, split: list[list[int]], monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    with Session(engine) as session:
        expected = tree.root(session, size)
        one, ranged = both(monkeypatch, split, lambda: tree.verify_against(session, size, expected))
        assert ranged == one
        assert (ranged.ok, ranged.checked, ranged.first_bad_seq) == (True, SIZE, None), ranged
        # the root joined from the ranges' subtrees is the one compared: another root fails
        wrong = bytes(32)
        one, ranged = both(monkeypatch, split, lambda: tree.verify_against(session, size, wrong))
        assert ranged == one
        assert not ranged.ok, ranged
        # and the leaves and subtrees the ranges give make the stored tree's root
        monkeypatch.setattr(audit, "PARALLEL_FROM", 40)
        _verification, leaves, stack = audit.scan(session, size)
        assert leaves == size
        assert tree._root(stack) == expected
