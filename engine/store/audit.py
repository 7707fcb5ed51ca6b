"""Appending to and verifying the global audit hash chain."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from engine.domain.audit import GENESIS, Event, chain_hash
from engine.store.tables import AuditEvent

# any constant works; it names the lock that serialises appends on PostgreSQL
AUDIT_LOCK_KEY = 0x50F10A0D17


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
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    # on SQLite the transaction began IMMEDIATE and already holds the database's write lock
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    versions = versions or {}
    rows = []
    for event in events:
        seq += 1
        digest = chain_hash(prev, seq, event)
        rows.append(
            (
                seq, event.at, event.type, event.opd, event.sop, event.case_id, event.actor,
                event.from_step, event.to_step, dict(event.data), prev, digest,
                versions.get(event.case_id or ""),
            )
        )  # fmt: skip
        prev = digest
    if postgres:
        _copy(session, rows)
    else:
        session.execute(insert(AuditEvent), [dict(zip(_STORED, row, strict=True)) for row in rows])
    return [row[0] for row in rows]


_STORED = ("seq", "at", "type", "opd", "sop", "case_id", "actor", "from_step", "to_step",
           "data", "prev_hash", "hash", "case_version")  # fmt: skip


def _copy(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert the rows with one COPY, in the session's transaction (PostgreSQL).

    COPY, not an executemany of INSERTs: a register change appends hundreds of thousands
    of events at once, and COPY takes them in a single stream. Each value is what the
    column type would bind: the instant in UTC, `data` as the JSON text SQLAlchemy's JSON
    type writes (json.dumps, the dialect's default), so the stored rows are the same.
    """
    connection = session.connection()
    serialize = connection.dialect._json_serializer or json.dumps  # type: ignore[attr-defined]
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY audit_event ({', '.join(_STORED)}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    (row[0], row[1].astimezone(UTC), *row[2:9], serialize(row[9]), *row[10:])
                )
    except psycopg.Error as error:
        # raised as SQLAlchemy raises a failed statement (a lost connection, a timeout: the
        # unit of work's 503), its values hidden as the engine hides them
        raise DBAPIError.instance(
            statement, None, error, psycopg.Error, hide_parameters=True, dialect=connection.dialect
        ) from error


@dataclass(frozen=True)
class Verification:
    """The result of recomputing the chain: the first event that breaks it, and why."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    last_hash: str
    reason: str | None = None  # plain words, naming columns, never a stored value


_COLUMNS = ("seq", "at", "type", "opd", "sop", "case_id", "actor", "from_step", "to_step",
            "data", "prev_hash", "hash")  # fmt: skip
COLUMNS = _COLUMNS  # what a raw reader of the trail selects, in this order
_TEXT = ("type", "opd", "sop", "case_id", "actor", "from_step", "to_step", "prev_hash", "hash")
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
    return Event(
        type=row["type"],
        at=_instant(row["at"]),
        opd=row["opd"],
        sop=row["sop"],
        case_id=row["case_id"],
        actor=row["actor"],
        from_step=row["from_step"],
        to_step=row["to_step"],
        data=_data(row["data"]),
    )


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
    names = ", ".join("CAST(data AS TEXT) AS data" if c == "data" else c for c in _COLUMNS)
    statement = text(f"SELECT {names} FROM audit_event ORDER BY seq")
    result = session.execute(statement.execution_options(yield_per=batch))
    try:
        return verify_rows(result.mappings())
    finally:
        result.close()  # it may stop early: the server-side cursor goes now, not when collected
