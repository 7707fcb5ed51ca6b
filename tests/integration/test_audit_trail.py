"""The audit trail: append-only in the database itself, and `verify` names any tampering."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from engine.store.tables import AuditEvent
from tests.integration.conftest import Server

EVENTS = AuditEvent.__table__


@contextmanager
def behind_the_api(server: Server) -> Iterator[Connection]:
    """A connection with the append-only triggers out of the way, as an intruder would have."""
    with server.ctx.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            yield conn
        else:
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
            conn.execute(text("DROP TRIGGER audit_event_no_delete"))
            yield conn
            for verb in ("UPDATE", "DELETE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON "
                        "audit_event BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                        f"{verb} refused'); END"
                    )
                )


def row(conn: Connection, seq: int) -> dict[str, Any]:
    return dict(conn.execute(select(EVENTS).where(EVENTS.c.seq == seq)).mappings().one())


def reinsert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(EVENTS).values(values))


@pytest.fixture
def trail(server: Server) -> Iterator[tuple[Server, Any, list[int]]]:
    """A few real events from a real case, an inspector, and the chain verified intact."""
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    loket.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"})
    loket.post(f"/api/v1/cases/{case['id']}/payments", json={"amount": 50000, "method": "cash"})
    inspector = server.client(f"inspektur-{office.opd}", inspector=True)
    seqs = [e["seq"] for e in inspector.get(f"/api/v1/cases/{case['id']}/history").json()["items"]]
    before = inspector.get("/api/v1/audit/verify").json()
    assert before["ok"] is True and before["first_bad_seq"] is None, before
    yield server, inspector, seqs
    after = inspector.get("/api/v1/audit/verify").json()
    assert after["ok"] is True, "the test must leave the chain as it found it"


def verify(inspector: Any) -> dict[str, Any]:
    response = inspector.get("/api/v1/audit/verify")
    assert response.status_code == 200
    return dict(response.json())


def test_an_altered_event_is_named_by_verify(trail: tuple[Server, Any, list[int]]) -> None:
    server, inspector, seqs = trail
    target = seqs[-1]  # the payment: change the amount the trail says was paid
    with behind_the_api(server) as conn:
        original = row(conn, target)
        tampered = {**original["data"], "amount": 50}
        conn.execute(update(EVENTS).where(EVENTS.c.seq == target).values(data=tampered))
    result = verify(inspector)
    assert (result["ok"], result["first_bad_seq"]) == (False, target)
    with behind_the_api(server) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": target})
        reinsert(conn, original)


def test_a_deleted_event_is_named_by_verify(trail: tuple[Server, Any, list[int]]) -> None:
    server, inspector, seqs = trail
    target = seqs[1]
    with behind_the_api(server) as conn:
        original = row(conn, target)
        conn.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": target})
    result = verify(inspector)
    assert (result["ok"], result["first_bad_seq"]) == (False, target)
    with behind_the_api(server) as conn:
        reinsert(conn, original)


def test_an_inserted_event_is_named_by_verify(trail: tuple[Server, Any, list[int]]) -> None:
    server, inspector, _seqs = trail
    with behind_the_api(server) as conn:
        head = row(conn, conn.execute(text("SELECT max(seq) FROM audit_event")).scalar_one())
        forged = {**head, "seq": head["seq"] + 1, "type": "case.closed", "prev_hash": head["hash"]}
        reinsert(conn, forged)  # the forger cannot compute a hash that fits: it reuses one
    result = verify(inspector)
    assert (result["ok"], result["first_bad_seq"]) == (False, head["seq"] + 1)
    with behind_the_api(server) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": head["seq"] + 1})


def test_reordered_events_are_named_by_verify(trail: tuple[Server, Any, list[int]]) -> None:
    server, inspector, seqs = trail
    first, second = seqs[1], seqs[2]
    with behind_the_api(server) as conn:
        a, b = row(conn, first), row(conn, second)
        conn.execute(
            text("DELETE FROM audit_event WHERE seq IN (:a, :b)"), {"a": first, "b": second}
        )
        reinsert(conn, {**b, "seq": first})
        reinsert(conn, {**a, "seq": second})
    result = verify(inspector)
    assert (result["ok"], result["first_bad_seq"]) == (False, first)
    with behind_the_api(server) as conn:
        conn.execute(
            text("DELETE FROM audit_event WHERE seq IN (:a, :b)"), {"a": first, "b": second}
        )
        reinsert(conn, a)
        reinsert(conn, b)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'someone' WHERE seq = 1",
        "DELETE FROM audit_event WHERE seq = 1",
    ],
)
def test_the_database_refuses_to_change_or_remove_an_event(server: Server, statement: str) -> None:
    server.office()  # at least one event exists
    with pytest.raises(DBAPIError, match="append-only"):
        with server.ctx.engine.begin() as conn:
            conn.execute(text(statement))


def test_the_database_refuses_to_empty_the_trail(server: Server) -> None:
    # SQLite has no TRUNCATE: there an unqualified DELETE is the way to empty a table
    wipe = "TRUNCATE audit_event" if server.backend == "postgres" else "DELETE FROM audit_event"
    with pytest.raises(DBAPIError, match="append-only"):
        with server.ctx.engine.begin() as conn:
            conn.execute(text(wipe))


def test_seq_grows_by_one_with_no_gaps_across_the_whole_trail(server: Server) -> None:
    office = server.office()
    office.open_case(office.staff("loket"))
    with server.ctx.engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_event ORDER BY seq"))]
    assert seqs == list(range(1, len(seqs) + 1))
