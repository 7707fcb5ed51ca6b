"""Appending to and verifying the global audit hash chain."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import psycopg
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from engine.domain import merkle
from engine.domain.audit import GENESIS, Event, chain_hash
from engine.store import chain
from engine.store.tables import AuditEvent

# any constant works; it names the lock that serialises appends on PostgreSQL
AUDIT_LOCK_KEY = 0x50F10A0D17
_TABLE = AuditEvent.__table__  # type: ignore[attr-defined]
# built once, sent through Core: the ORM's bulk insert costs more CPU than the statement
# PostgreSQL: the chain's lock taken and its head read in one round trip (migration 0014)
_LOCKED_HEAD = text("SELECT seq, hash FROM sopflow_chain_head(:key)")
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
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        head = conn.execute(_LOCKED_HEAD, {"key": AUDIT_LOCK_KEY}).first()
    else:
        # the transaction began IMMEDIATE and already holds the database's write lock
        head = conn.execute(_HEAD).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    versions = versions or {}
    rows = []
    for event in events:
        seq += 1
        digest = chain_hash(prev, seq, event)
        version = (versions or {}).get(event.case_id or "")
        rows.append(event_row(event, seq, prev, digest, version))
        prev = digest
    if postgres and len(rows) >= COPY_FROM:
        _copy(conn, rows)
    else:
        conn.execute(_INSERT, rows)
    return [row["seq"] for row in rows]


# from this many events on, PostgreSQL takes them by COPY (a register change appends
# hundreds of thousands at once); below, one executemany of the prebuilt INSERT is cheaper
COPY_FROM = 1000
_STORED = (*COLUMNS, "case_version")


def _copy(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the rows with one COPY, in the connection's transaction (PostgreSQL).

    Each value is what the column type would bind: the instant in UTC, `data` as the JSON
    text SQLAlchemy's JSON type writes (json.dumps, the dialect's default), so the stored
    rows are the same as the INSERT's.
    """
    serialize = connection.dialect._json_serializer or json.dumps  # type: ignore[attr-defined]
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY audit_event ({', '.join(_STORED)}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = row | {"at": row["at"].astimezone(UTC), "data": serialize(row["data"])}
                copy.write_row([values[name] for name in _STORED])
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


Unreadable = chain.Unreadable
as_event = chain.as_event

# below this many events one process verifies: starting others costs more than it saves
PARALLEL_FROM = 100_000


def verify_rows(rows: Iterable[Mapping[str, Any]]) -> Verification:
    """Recompute the chain over raw rows in `seq` order and name the first one that breaks it.

    It always answers: whatever a row holds, the worst outcome is that row named as bad.
    """
    found = chain.scan((tuple(row[c] for c in COLUMNS) for row in rows), 1, GENESIS)
    return _verification([found])


def _verification(scans: list[chain.Scan]) -> Verification:
    """Join the scans of consecutive ranges into the answer one pass in order would give."""
    prev = GENESIS
    for found in scans:
        if found.first > 1 and found.kind not in ("missing", "unreadable"):
            # the link across the boundary, checked before the row's own hash
            if found.first_prev != prev:
                seq = found.first
                reason = f"event {seq} does not follow event {seq - 1}: its `prev_hash` differs"
                return Verification(False, seq - 1, seq, prev, reason)
        if found.bad is not None:
            last = found.last_hash if found.last_hash is not None else prev
            return Verification(False, found.bad - 1, found.bad, last, found.reason)
        if found.last_hash is not None:
            prev = found.last_hash
    return Verification(True, sum(found.checked for found in scans), None, prev)


def _dbapi_url(session: Session) -> str:
    url = session.get_bind().engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def workers() -> int:
    """The processes a verification of a large trail uses on PostgreSQL: one per core."""
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def scan(
    session: Session, size: int = 0, processes: int | None = None
) -> tuple[Verification, int, list[bytes]]:
    """Recompute the whole chain; with it the perfect subtrees of the first `size` leaves.

    Returns the verification, how many leaves were taken (`size` unless the chain breaks or
    ends before), and their perfect subtrees (largest first). On PostgreSQL a large trail
    is verified in ranges of `seq`, one process each, under one snapshot; SQLite (the
    embedded default, for small offices) verifies in this process.
    """
    processes = workers() if processes is None else processes
    last = 0
    if session.get_bind().dialect.name == "postgresql" and processes > 1:
        last = session.execute(text("SELECT max(seq) FROM audit_event")).scalar() or 0
    if last < PARALLEL_FROM:
        # in this session's own transaction: it sees what the session sees
        names = ", ".join("CAST(data AS TEXT) AS data" if c == "data" else c for c in COLUMNS)
        statement = text(f"SELECT {names} FROM audit_event ORDER BY seq")
        result = session.execute(statement.execution_options(yield_per=5000))
        try:
            found = chain.scan(iter(result), 1, GENESIS, size)
        finally:
            result.close()  # it may stop early: the cursor goes now, not when collected
        return _verification([found]), found.leaves, found.stack
    snapshot = session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    url = _dbapi_url(session)
    # ranges of a power-of-two length, so that each range's leaves are whole subtrees
    length = 1 << ((last + processes - 1) // processes - 1).bit_length()
    starts = list(range(1, last + 1, length))
    ranges = [(low, low + length - 1) for low in starts[:-1]] + [(starts[-1], None)]
    context = multiprocessing.get_context("spawn")  # never fork a threaded server
    with ProcessPoolExecutor(max(1, len(ranges) - 1), mp_context=context) as pool:
        others = [pool.submit(chain.scan_range, url, snapshot, low, high, size)
                  for low, high in ranges[1:]]  # fmt: skip
        scans = [chain.scan_range(url, snapshot, ranges[0][0], ranges[0][1], size)]
        scans += [future.result() for future in others]
    verification = _verification(scans)
    leaves, parts = 0, []
    for found in scans:  # ranges whose leaves all hold, in order, up to `size`
        if leaves != found.first - 1:
            break
        leaves += found.leaves
        parts.append((found.leaves, found.stack))
        if found.bad is not None:
            break
    return verification, leaves, _join(parts)


def _join(parts: list[tuple[int, list[bytes]]]) -> list[bytes]:
    """The perfect subtrees of consecutive ranges' leaves, each range given by its count
    and its own perfect subtrees (every range but the last a power of two long)."""
    stack: list[tuple[int, bytes]] = []  # level, hash; levels decrease
    for count, hashes in parts:
        levels = [lv for lv in range(count.bit_length() - 1, -1, -1) if count >> lv & 1]
        for level, digest in zip(levels, hashes, strict=True):
            stack.append((level, digest))
            while len(stack) > 1 and stack[-2][0] == stack[-1][0]:
                level, right = stack.pop()
                _, left = stack.pop()
                stack.append((level + 1, merkle.node_hash(left, right)))
    return [digest for _, digest in stack]


def verify(session: Session, processes: int | None = None) -> Verification:
    """Recompute the whole chain, streaming it from the database.

    Plain rows, not ORM objects: building an object per event cost more than hashing it.
    Raw values, not typed columns: one garbled value must not stop the whole check.
    """
    return scan(session, 0, processes)[0]
