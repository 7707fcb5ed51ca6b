"""The audit trail's canonical form, hash chain and masking (pure)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

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


# an event with every field set, so that the canonical form shows each one in its place
FULL = Event(
    "case.transitioned",
    AT,
    opd="dukcapil",
    sop="akta-lahir",
    case_id="c-01",
    actor="petugas-1",
    from_step="pendaftaran",
    to_step="verifikasi",
    data={"transition": "terima", "amount": 5000},
)


def test_canonical_form_holds_every_field_of_an_event() -> None:
    assert canonical(12, FULL) == (
        b'{"actor":"petugas-1","at":"2026-03-02T01:30:00.000000Z","case_id":"c-01",'
        b'"data":{"amount":5000,"transition":"terima"},"from_step":"pendaftaran",'
        b'"opd":"dukcapil","seq":12,"sop":"akta-lahir","to_step":"verifikasi",'
        b'"type":"case.transitioned"}'
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("type", "case.closed"),
        ("at", AT + timedelta(microseconds=1)),
        ("opd", "dinsos"),
        ("sop", "akta-mati"),
        ("case_id", "c-02"),
        ("actor", "petugas-2"),
        ("actor", None),
        ("from_step", "verifikasi"),
        ("to_step", "pendaftaran"),
        ("to_step", None),
        ("data", {"transition": "terima", "amount": 5001}),
        ("data", {}),
    ],
)
def test_the_hash_covers_every_field(name: str, value: object) -> None:
    changed = dataclasses.replace(FULL, **{name: value})
    assert canonical(12, changed) != canonical(12, FULL)
    assert chain_hash(GENESIS, 12, changed) != chain_hash(GENESIS, 12, FULL)


def test_canonical_form_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        canonical(1, Event("case.created", datetime(2026, 3, 2, 8, 30)))


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


def test_a_twelve_digit_number_is_masked_and_an_eleven_digit_one_like_a_word() -> None:
    assert mask("320123456789") == "3201****6789"
    assert mask("32012345678") == "3**********"


def test_masking_keeps_the_shape_of_the_text() -> None:
    assert mask("Budi  Santoso") == "B***  S******"


def test_the_canonical_instant_is_utc_whatever_the_machine_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Asia/Jayapura")
    time.tzset()
    try:
        assert b'"at":"2026-03-02T01:30:00.000000Z"' in canonical(1, Event("case.created", AT))
    finally:
        monkeypatch.undo()
        time.tzset()


def test_every_kind_of_event_the_code_writes_is_one_readers_may_filter_by() -> None:
    """A new kind of event that is not in EVENT_TYPES would be refused as a trail filter."""
    import re

    from engine.domain.audit import EVENT_TYPES
    from tests.conftest import ROOT

    kind = re.compile(r'"((?:sop|case|sla|access|user|calendar)\.[a-z_]+)"')
    written = {
        match
        for path in (ROOT / "engine").rglob("*.py")
        for match in kind.findall(path.read_text())
        if not match.endswith((".yaml", ".yml"))
    }
    assert written, "the pattern finds the event types in the code"
    assert written <= EVENT_TYPES, sorted(written - EVENT_TYPES)
