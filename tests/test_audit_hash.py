"""The audit trail's canonical form, hash chain and masking (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

from engine.domain.audit import GENESIS, Event, canonical, chain_hash, mask

AT = datetime(2026, 3, 2, 8, 30, tzinfo=timezone(timedelta(hours=7)))


def test_canonical_form_is_sorted_compact_json_with_utc_time() -> None:
    event = Event("case.created", AT, opd="dukcapil", data={"nama": "Búdi", "amount": 5000})
    assert (
        canonical(7, event)
        == (
            '{"actor":null,"at":"2026-03-02T01:30:00.000000Z","case_id":null,'
            '"data":{"amount":5000,"nama":"Búdi"},"from_step":null,"opd":"dukcapil",'
            '"seq":7,"sop":null,"to_step":null,"type":"case.created"}'
        ).encode()
    )


def test_hash_chains_the_previous_hash_and_the_canonical_event() -> None:
    event = Event("sop.published", datetime(2026, 1, 5, tzinfo=UTC), opd="dinsos")
    expected = hashlib.sha256(GENESIS.encode() + canonical(1, event)).hexdigest()
    assert chain_hash(GENESIS, 1, event) == expected


def test_any_change_to_an_event_changes_its_hash() -> None:
    event = Event("case.payment_recorded", AT, case_id="c1", data={"amount": 50000})
    base = chain_hash(GENESIS, 3, event)
    changed = Event("case.payment_recorded", AT, case_id="c1", data={"amount": 50001})
    assert chain_hash(GENESIS, 3, changed) != base
    assert chain_hash(GENESIS, 4, event) != base
    assert chain_hash("1" * 64, 3, event) != base


def test_nik_is_masked_like_the_contract_example() -> None:
    assert mask("3201234567890001") == "3201********0001"


def test_names_keep_only_their_initials() -> None:
    assert mask("Budi Santoso") == "B*** S******"
    assert "Budi" not in mask("Budi Santoso")
