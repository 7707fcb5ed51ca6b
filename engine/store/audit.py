"""Appending to and verifying the global audit hash chain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, text
from sqlmodel import Session

from engine.domain.audit import GENESIS, Event, chain_hash
from engine.store.tables import AuditEvent

# any constant works; it names the lock that serialises appends on PostgreSQL
AUDIT_LOCK_KEY = 0x50F10A0D17


def append(session: Session, events: Sequence[Event]) -> list[int]:
    """Chain `events` after the current head and insert them; returns their `seq`s.

    Call it last in a transaction: it takes the chain's lock (held until commit), so every
    other lock a command needs is already held, and two commands never wait on each other
    in opposite orders.
    """
    if not events:
        return []
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    # on SQLite the transaction began IMMEDIATE and already holds the database's write lock
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    rows = []
    for event in events:
        seq += 1
        digest = chain_hash(prev, seq, event)
        rows.append(
            {
                "seq": seq,
                "at": event.at,
                "type": event.type,
                "opd": event.opd,
                "sop": event.sop,
                "case_id": event.case_id,
                "actor": event.actor,
                "from_step": event.from_step,
                "to_step": event.to_step,
                "data": dict(event.data),
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    session.execute(insert(AuditEvent), rows)
    return [row["seq"] for row in rows]


@dataclass(frozen=True)
class Verification:
    """The result of recomputing the chain."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    last_hash: str


def as_event(row: AuditEvent) -> Event:
    """The domain event a stored row claims to be."""
    return Event(
        type=row.type,
        at=row.at,
        opd=row.opd,
        sop=row.sop,
        case_id=row.case_id,
        actor=row.actor,
        from_step=row.from_step,
        to_step=row.to_step,
        data=row.data,
    )


def verify_rows(rows: Iterable[AuditEvent]) -> Verification:
    """Recompute the chain over rows in `seq` order and name the first one that breaks it."""
    expected_seq, prev, checked = 1, GENESIS, 0
    for row in rows:
        # a missing seq (a removed event) breaks the chain at the seq that is missing
        if row.seq != expected_seq:
            return Verification(False, checked, expected_seq, prev)
        digest = chain_hash(prev, row.seq, as_event(row))
        if row.prev_hash != prev or row.hash != digest:
            return Verification(False, checked, row.seq, prev)
        checked += 1
        expected_seq, prev = row.seq + 1, digest
    return Verification(True, checked, None, prev)


def verify(session: Session, batch: int = 5000) -> Verification:
    """Recompute the whole chain, streaming it from the database.

    Plain rows, not ORM objects: building an object per event cost more than hashing it.
    """
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    rows = session.execute(select(table).order_by(table.c.seq).execution_options(yield_per=batch))
    return verify_rows(rows)  # type: ignore[arg-type]
