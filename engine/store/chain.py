"""Recomputing the hash chain over stored rows, fast, and over ranges of `seq` in parallel.

A lean module (no SQLAlchemy): the worker processes that verify ranges import only this,
psycopg and the domain's canonical form.

Each event's hash depends only on its own row and its stored `prev_hash`; the chain holds
when, besides, every `prev_hash` is the previous row's `hash`. So ranges of `seq` are
checked apart and joined: the first bad event is the first one over the ranges in order,
and the link across each boundary is checked by the join. Any row the fast path does not
pass is looked at again by the reference check (`check_row`), which gives the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import orjson

from engine.domain import merkle
from engine.domain.audit import GENESIS, Event, canonical_of, chain_hash, utc_text

COLUMNS = ("seq", "at", "type", "opd", "sop", "case_id", "actor", "from_step", "to_step",
           "data", "prev_hash", "hash")  # fmt: skip
_TEXT = ("type", "opd", "sop", "case_id", "actor", "from_step", "to_step", "prev_hash", "hash")
_REQUIRED = ("type", "prev_hash", "hash")

# PostgreSQL writes `at` in the canonical UTC text and `data` as its stored text itself:
# formatting there is cheaper than a datetime per row in Python
_PG_AT = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
PG_SELECT = ", ".join(
    {"at": f"{_PG_AT} AS at", "data": "CAST(data AS TEXT) AS data"}.get(c, c) for c in COLUMNS
)

# a number that orjson would read back otherwise than `json` (a float, or an integer of 19
# digits or more, which orjson reads as a float): JSON numbers follow `:`, `,` or `[`.
# "sha256:" is left out so that commitments' hex digits are not taken for numbers; a
# string that looks like a number here only sends its row the slower way
_NOT_PLAIN = re.compile(r"(?<!sha256)[:,\[]\s*-?(?:\d+[.eE]|\d{19})")


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


def check_row(row: Mapping[str, Any], prev: str) -> tuple[str, str | None]:
    """The reference check of one row chained after `prev`: (its hash, None) when it
    holds, else (kind, reason) with kind `unreadable`, `prev` or `hash`."""
    seq = row["seq"]
    try:
        digest = chain_hash(prev, seq, as_event(row))
    except Unreadable as e:
        return "unreadable", f"event {seq} is unreadable: {e}"
    except (ValueError, TypeError, OverflowError):
        reason = f"event {seq} is unreadable: its content cannot be put in canonical form"
        return "unreadable", reason
    if row["prev_hash"] != prev:
        return "prev", f"event {seq} does not follow event {seq - 1}: its `prev_hash` differs"
    if row["hash"] != digest:
        return "hash", f"event {seq} was changed after it was written: its hash does not match"
    return digest, None


def fast_hash(row: Sequence[Any]) -> str | None:
    """The chain hash of a row in `COLUMNS` order from its own `prev_hash`, when the row
    reads the plain way (`at` text in canonical form or a datetime, `data` JSON text of an
    object); None sends it to the reference check."""
    seq, at, type_, opd, sop, case_id, actor, from_step, to_step, data, prev, _ = row
    if type(at) is not str:
        if type(at) is not datetime:
            return None
        at = utc_text(at if at.tzinfo else at.replace(tzinfo=UTC))
    elif len(at) == 26 and at[10] == " ":  # SQLite's naive UTC text
        at = f"{at[:10]}T{at[11:]}Z"
    elif len(at) != 27 or at[10] != "T" or not at.endswith("Z"):
        return None
    if type(data) is not str or type(prev) is not str or _NOT_PLAIN.search(data):
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict:
        return None
    try:
        body = canonical_of(
            seq, at, type_, opd, sop, case_id, actor, from_step, to_step, value, True
        )
    except (ValueError, TypeError, OverflowError):
        return None  # a column of the wrong type: the reference check names it
    return sha256(prev.encode() + body).hexdigest()


@dataclass
class Scan:
    """What checking the rows of one range of `seq` found."""

    first: int  # the first seq of the range
    checked: int = 0  # rows that hold, before the first bad one
    bad: int | None = None  # the first bad seq
    kind: str | None = None  # missing, unreadable, prev, hash
    reason: str | None = None
    first_prev: str | None = None  # the `prev_hash` stored in the range's first row
    last_hash: str | None = None  # the hash of the last row that holds
    leaves: int = 0  # leaves taken into `stack` (rows up to `size` that hold)
    stack: list[bytes] = field(default_factory=list)  # the range's perfect subtrees


def scan(
    rows: Iterable[Sequence[Any]],
    first: int,
    prev: str | None,
    size: int = 0,
    frontier: merkle.Frontier | None = None,
) -> Scan:
    """Check rows in `seq` order starting at `first`, chained after `prev` (None: after
    whatever the first row names, for the join to check); the leaves of the rows with
    `seq <= size` are folded into perfect subtrees as they pass: into `frontier` when one
    is given (a trusted tree of `first - 1` leaves, extended in place), else a new one."""
    result = Scan(first)
    frontier = merkle.Frontier() if frontier is None else frontier
    expected = first
    for row in rows:
        seq = row[0]
        if expected == first:
            result.first_prev = row[10] if isinstance(row[10], str) else None
            if prev is None:
                prev = row[10] if isinstance(row[10], str) else ""
        if type(seq) is not int or seq != expected:
            result.bad, result.kind = expected, "missing"
            result.reason = f"event {expected} is missing"
            break
        digest = fast_hash(row)
        if digest is None or digest != row[11] or row[10] != prev:
            outcome, reason = check_row(dict(zip(COLUMNS, row, strict=True)), prev or "")
            if reason is not None:
                result.bad, result.kind, result.reason = seq, outcome, reason
                break
            digest = outcome
        if seq <= size:
            frontier.append(merkle.leaf_hash(bytes.fromhex(digest)))
        result.checked += 1
        result.last_hash = prev = digest
        expected += 1
    result.leaves, result.stack = frontier.size, frontier.stack
    return result


def scan_range(url: str, snapshot: str | None, low: int, high: int | None, size: int) -> Scan:
    """Check the rows of `[low, high]` (low 1: from the start; high None: to the end) on a
    connection of its own, under the exported snapshot of the verification that asked."""
    import psycopg

    where = ["seq <= %(high)s" if high is not None else "TRUE"]
    if low > 1:
        where.append("seq >= %(low)s")
    with psycopg.connect(url) as conn:
        if snapshot is not None:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        with conn.cursor(name="sopflow_verify") as cursor:
            cursor.itersize = 5000
            cursor.execute(
                f"SELECT {PG_SELECT} FROM audit_event WHERE {' AND '.join(where)} ORDER BY seq",
                {"low": low, "high": high},
            )
            # the leaves of a range start at a multiple of its length: its frontier stack
            # is exactly its share of the root's perfect subtrees
            return scan(cursor, low, None if low > 1 else GENESIS, size)
