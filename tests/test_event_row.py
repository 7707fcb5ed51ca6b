"""An audit event and its stored row map onto each other in one place, field for field."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from engine.domain.audit import GENESIS, Event, chain_hash
from engine.store.audit import COLUMNS, EVENT_COLUMNS, as_event, event_row


def test_every_field_of_an_event_has_its_column() -> None:
    assert sorted(EVENT_COLUMNS) == sorted(f.name for f in fields(Event))
    assert set(EVENT_COLUMNS) < set(COLUMNS)


def test_an_event_read_back_from_its_row_is_the_same_event() -> None:
    event = Event(
        "case.transitioned", datetime(2026, 3, 2, 1, 30, tzinfo=UTC), opd="dinas-uji",
        sop="surat-izin", case_id="c1", actor="loket-1", from_step="pendaftaran",
        to_step="pemeriksaan", data={"transition": "terima", "received": ["ktp"]},
    )  # fmt: skip
    digest = chain_hash(GENESIS, 1, event)
    row = event_row(event, 1, GENESIS, digest, case_version=2)
    assert (row["seq"], row["prev_hash"], row["hash"], row["case_version"]) == (
        1, GENESIS, digest, 2,
    )  # fmt: skip
    assert as_event(row) == event
    # as SQLite hands it back: a naive instant in UTC, `data` as JSON text
    stored = row | {"at": "2026-03-02 01:30:00", "data": '{"transition": "terima", '
                                                          '"received": ["ktp"]}'}  # fmt: skip
    assert chain_hash(GENESIS, 1, as_event(stored)) == digest


def test_the_verifier_reads_the_columns_the_mapping_writes() -> None:
    from engine.store import audit, chain

    assert chain.COLUMNS == audit.COLUMNS
