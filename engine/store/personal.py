"""Personal data beside the chain: case secrets, committed values, and their erasure.

An event is sealed before it is chained: every personal value in its `data` is replaced
by its commitment (engine.domain.audit.commitment) and the value is kept in
`personal_datum`, keyed by that commitment, with the case's secret in `case_secret`.
Erasing a case deletes both; the chain keeps only commitments and is not touched.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from engine.domain.audit import Event, commitment, is_commitment
from engine.domain.personal import has_personal_number
from engine.store.tables import CaseSecret, IdempotencyKey, PersonalDatum

Purpose = Callable[[str, Mapping[str, Any]], str]


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def case_secret(session: Session, case_id: str, cache: dict[str, bytes]) -> bytes:
    """The case's secret, made on first use (two writers racing agree on one)."""
    if case_id not in cache:
        statement = _insert(session, CaseSecret).values(
            case_id=case_id, secret=secrets.token_hex(32)
        )
        session.execute(statement.on_conflict_do_nothing(index_elements=["case_id"]))
        found = session.execute(
            select(CaseSecret.secret).where(CaseSecret.case_id == case_id)
        ).scalar_one()
        cache[case_id] = bytes.fromhex(found)
    return cache[case_id]


def seal(
    session: Session,
    event: Event,
    personal: Collection[str],
    purpose: Purpose,
    cache: dict[str, bytes],
) -> Event:
    """The event with its personal values replaced by commitments, the values kept aside.

    `personal` names the values that are personal whatever they hold (`comment`,
    `fields.nik`); any other text in `data` holding a NIK- or phone-shaped number is
    personal too. Events of no case are returned as they are.
    """
    if event.case_id is None:
        return event
    case_id = event.case_id
    held: list[dict[str, Any]] = []

    def walk(value: Any, name: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, f"{name}.{k}" if name else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, name) for v in value]
        if not _is_personal(name, value, personal):
            return value
        secret = case_secret(session, case_id, cache)
        sealed = commitment(secret, name, value)
        held.append(
            {
                "case_id": case_id,
                "commitment": sealed,
                "name": name,
                "value": json.dumps(value, ensure_ascii=False),
                "purpose": purpose(name, event.data)[:500],
                "recorded_at": event.at,
            }
        )
        return sealed

    data = walk(dict(event.data), "")
    if not held:
        return event
    statement = _insert(session, PersonalDatum).values(held)
    session.execute(statement.on_conflict_do_nothing(index_elements=["case_id", "commitment"]))
    return replace(event, data=data)


def _is_personal(name: str, value: Any, personal: Collection[str]) -> bool:
    """Whether `seal` replaces this value (named `name` in the event's data)."""
    if value is None or is_commitment(value):
        return False
    return name in personal or has_personal_number(value) or _looks_committed(value)


def holds_personal(
    data: Mapping[str, Any], personal: Collection[str] = (), memo: dict[Any, bool] | None = None
) -> bool:
    """Whether `seal` would replace any value of `data` (it has no effect when not).

    `memo` keeps the verdict on each (name, text) met, for callers checking many events
    that repeat their values (one memo per `personal`).
    """

    def walk(value: Any, name: str) -> bool:
        if isinstance(value, dict):
            return any(walk(v, f"{name}.{k}" if name else str(k)) for k, v in value.items())
        if isinstance(value, list):
            return any(walk(v, name) for v in value)
        if memo is None or not isinstance(value, str):
            return _is_personal(name, value, personal)
        key = (name, value)
        found = memo.get(key)
        if found is None:
            found = memo[key] = _is_personal(name, value, personal)
        return found

    return walk(dict(data), "")


def _looks_committed(value: object) -> bool:
    # text typed to look like a commitment is kept aside too, so a reader never mistakes it
    return isinstance(value, str) and value.startswith("hmac-sha256:")


def held_values(session: Session, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per case, commitment → (name, clear value) of what is still held."""
    wanted = sorted(set(case_ids))
    out: dict[str, dict[str, Any]] = {c: {} for c in wanted}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(PersonalDatum.case_id, PersonalDatum.commitment, PersonalDatum.name,
                   PersonalDatum.value)
            .where(PersonalDatum.case_id.in_(wanted[start : start + 500]))  # type: ignore[attr-defined]
        )  # fmt: skip
        for case_id, sealed, name, value in rows:
            out[case_id][sealed] = (name, json.loads(value))
    return out


def held_items(session: Session, case_id: str) -> list[PersonalDatum]:
    """Everything kept aside for a case, oldest first."""
    return list(
        session.execute(
            select(PersonalDatum)
            .where(PersonalDatum.case_id == case_id)
            .order_by(PersonalDatum.id)  # type: ignore[arg-type]
        ).scalars()
    )


def wipe(session: Session, case_id: str) -> int:
    """Delete a case's kept values, its secret and the answers replayed for its requests.

    Returns how many values were deleted. Stored answers to retried requests
    (`idempotency_key`) that name the case can hold its applicant's data: they go too, and a
    retry of such a request after the erasure is a new request.
    """
    removed = session.execute(delete(PersonalDatum).where(PersonalDatum.case_id == case_id))
    session.execute(delete(CaseSecret).where(CaseSecret.case_id == case_id))
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.body.contains(f'"{case_id}"')  # type: ignore[union-attr]
        )
    )
    return int(removed.rowcount or 0)  # type: ignore[attr-defined]


def flush_deleted(engine: Engine, deadline_seconds: float = 10.0) -> bool:
    """On SQLite, move the WAL into the file and truncate it, so no deleted value stays there.

    With `secure_delete` on (engine.store.db), deleted content is overwritten with zeros in
    the file; the WAL still holds the pages as they were until a checkpoint writes them back
    and the WAL is truncated. Readers holding an old snapshot delay that: it is retried until
    `deadline_seconds`. Returns True when the WAL was emptied (always True on PostgreSQL,
    whose deleted rows VACUUM reclaims; see the README).
    """
    if engine.dialect.name != "sqlite":
        return True
    stop = time.monotonic() + deadline_seconds
    while True:
        # a raw connection: it runs the pragma outside any transaction (autocommit)
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.close()
        finally:
            connection.close()
        if busy is None or busy[0] == 0:
            return True
        if time.monotonic() > stop:
            return False
        time.sleep(0.05)
