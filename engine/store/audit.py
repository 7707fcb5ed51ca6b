"""Appending to and verifying the global audit hash chain."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlmodel import Session

from engine.domain.audit import GENESIS, Event, chain_hash
from engine.store.tables import AuditEvent

# any constant works; it names the lock that serialises appends on PostgreSQL
AUDIT_LOCK_KEY = 0x50F10A0D17
_TABLE = AuditEvent.__table__  # type: ignore[attr-defined]
# built once, sent through Core: the ORM's bulk insert costs more CPU than the statement
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_HEAD = select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1)
_INSERT = insert(_TABLE)

# The one mapping between a domain Event and a row of `audit_event`: each field of Event is
# the column of the same name; a row adds its place in the chain (seq, prev_hash, hash) and,
# outside the hash, the case's version after the transaction.
EVENT_COLUMNS = ("at", "type", "opd", "sop", "case_id", "actor", "from_step", "to_step", "data")
COLUMNS = ("seq", *EVENT_COLUMNS, "prev_hash", "hash")  # what a raw reader selects, in order


def event_row(
    event: Event, seq: int, prev_hash: str, digest: str, case_version: int | None = None
) -> dict[str, Any]:
    """The row that stores `event` at `seq` in the chain."""
    row: dict[str, Any] = {"seq": seq}
    row |= {name: getattr(event, name) for name in EVENT_COLUMNS}
    row["data"] = dict(event.data)
    row |= {"prev_hash": prev_hash, "hash": digest, "case_version": case_version}
    return row


def row_values(row: AuditEvent) -> dict[str, Any]:
    """A stored event's columns by name: its seq, its event's fields and its hashes."""
    values = {name: getattr(row, name) for name in ("seq", *EVENT_COLUMNS)}
    return values | {"hash": row.hash, "prev_hash": row.prev_hash}


def append(
    session: Session, events: Sequence[Event], versions: Mapping[str, int] | None = None
) -> list[int]:
    """Chain `events` after the current head and insert them; returns their `seq`s.

    `versions` (case id -> the case's version after this transaction) is stored beside each
    case event, outside the hash.

    Call it last in a transaction: it takes the chain's lock (held until commit), so every
    other lock a command needs is already held, and two commands never wait on each other
    in opposite orders.
    """
    if not events:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"key": AUDIT_LOCK_KEY})
    # on SQLite the transaction began IMMEDIATE and already holds the database's write lock
    head = conn.execute(_HEAD).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    rows = []
    for event in events:
        seq += 1
        digest = chain_hash(prev, seq, event)
        version = (versions or {}).get(event.case_id or "")
        rows.append(event_row(event, seq, prev, digest, version))
        prev = digest
    conn.execute(_INSERT, rows)
    return [row["seq"] for row in rows]


@dataclass(frozen=True)
class Verification:
    """The result of recomputing the chain: the first event that breaks it, and why."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    last_hash: str
    reason: str | None = None  # plain words, naming columns, never a stored value


_TEXT = (*(c for c in EVENT_COLUMNS if c not in ("at", "data")), "prev_hash", "hash")
_REQUIRED = ("type", "prev_hash", "hash")


class Unreadable(Exception):
    """A stored row that cannot be read as an event; the message says why, in plain words."""


def as_event(row: Mapping[str, Any]) -> Event:
    """The domain event a stored row claims to be, read from its raw column values.

    Raw, not through the column types: a row an intruder garbled (an instant that is no
    time, data that is not JSON, a value of the wrong type) must be named, not crash.
    """
    for name in _TEXT:
        value = row[name]
        if not isinstance(value, str) and (value is not None or name in _REQUIRED):
            raise Unreadable(f"its `{name}` is not text")
    fields = {name: row[name] for name in EVENT_COLUMNS}
    return Event(**fields | {"at": _instant(row["at"]), "data": _data(row["data"])})


def _instant(value: object) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise Unreadable("its instant `at` is not a valid time") from None
    if not isinstance(value, datetime):
        raise Unreadable("its instant `at` is not a valid time")
    # SQLite keeps instants naive, in UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _data(value: object) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            raise Unreadable("its `data` is not JSON") from None
    if not isinstance(value, dict):
        raise Unreadable("its `data` is not a JSON object")
    return value


def verify_rows(rows: Iterable[Mapping[str, Any]]) -> Verification:
    """Recompute the chain over raw rows in `seq` order and name the first one that breaks it.

    It always answers: whatever a row holds, the worst outcome is that row named as bad.
    """
    expected_seq, prev, checked = 1, GENESIS, 0
    for row in rows:
        seq = row["seq"]
        # a missing seq (a removed event) breaks the chain at the seq that is missing
        if not isinstance(seq, int) or isinstance(seq, bool) or seq != expected_seq:
            return Verification(
                False, checked, expected_seq, prev, f"event {expected_seq} is missing"
            )
        try:
            digest = chain_hash(prev, seq, as_event(row))
        except Unreadable as e:
            return Verification(False, checked, seq, prev, f"event {seq} is unreadable: {e}")
        except (ValueError, TypeError, OverflowError):
            reason = f"event {seq} is unreadable: its content cannot be put in canonical form"
            return Verification(False, checked, seq, prev, reason)
        if row["prev_hash"] != prev:
            reason = f"event {seq} does not follow event {seq - 1}: its `prev_hash` differs"
            return Verification(False, checked, seq, prev, reason)
        if row["hash"] != digest:
            reason = f"event {seq} was changed after it was written: its hash does not match"
            return Verification(False, checked, seq, prev, reason)
        checked += 1
        expected_seq, prev = seq + 1, digest
    return Verification(True, checked, None, prev)


def verify(session: Session, batch: int = 5000) -> Verification:
    """Recompute the whole chain, streaming it from the database.

    Plain rows, not ORM objects: building an object per event cost more than hashing it.
    Raw values, not typed columns: one garbled value must not stop the whole check.
    """
    # `data` as its stored text, so that both databases hand over the same thing to parse
    names = ", ".join("CAST(data AS TEXT) AS data" if c == "data" else c for c in COLUMNS)
    statement = text(f"SELECT {names} FROM audit_event ORDER BY seq")
    result = session.execute(statement.execution_options(yield_per=batch))
    try:
        return verify_rows(result.mappings())
    finally:
        result.close()  # it may stop early: the server-side cursor goes now, not when collected
