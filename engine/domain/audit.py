"""The audit trail's canonical form, its hash chain, and masking of personal data.

Canonical form of an event (what is hashed): a JSON object with the keys `seq`, `at`,
`type`, `opd`, `sop`, `case_id`, `actor`, `from_step`, `to_step` and `data`, sorted by key,
no insignificant white space (separators `,` and `:`), UTF-8 without escaping non-ASCII
characters; `at` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`; money as integer rupiah; absent
values as `null`. `hash = SHA-256(prev_hash ‖ canonical)` in lowercase hex, where
`prev_hash` is the previous event's hash as its 64 hex characters (64 zeros before the
first event).

Personal data never enters the canonical form, not even masked. Where an event speaks of a
personal value (a field marked `pii` or named like personal data, every free-text comment,
any text holding a NIK- or phone-shaped number), its `data` holds the value's commitment in
its place: the text `hmac-sha256:` followed by the lowercase hex of
`HMAC-SHA256(secret, name_value)`, where `secret` is the case's own 32 random bytes and
`name_value` is the UTF-8 JSON array `[name, value]` written like the canonical form
(`["fields.nik","3201234567890001"]`, `["comment","..."]`). The secret and the clear value
are kept beside the chain, in erasable storage; readers put the value (or its mask, or
`[erased]`) back in when they show the event. Erasure removes them and leaves every hash,
and so `verify` and every Merkle proof, as it was.

Events written before commitments existed (no `hmac-sha256:` values) hold the masked form
in their `data`; their canonical form is the same and they verify unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64

# Every kind of event sopflow writes: what a reader may filter the trail by.
EVENT_TYPES = frozenset(
    {
        "sop.published",
        "case.created",
        "case.transitioned",
        "case.transition_refused",
        "case.received",
        "case.payment_recorded",
        "case.billed",
        "case.closed",
        "case.erased",
        "sla.warned",
        "sla.escalated",
        "sla.service_breached",
        "sla.decision_overdue",
        "sla.rescheduled",
        "access.denied",
        "user.created",
        "user.disabled",
        "user.enabled",
        "user.token_issued",
        "calendar.day_added",
        "calendar.day_removed",
        "calendar.ramadan_set",
        "calendar.zone_set",
    }
)


@dataclass(frozen=True)
class Event:
    """One audit event before it is chained: what happened, to what, by whom, when."""

    type: str
    at: datetime
    opd: str | None = None
    sop: str | None = None
    case_id: str | None = None
    actor: str | None = None
    from_step: str | None = None
    to_step: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def utc_text(at: datetime) -> str:
    """An instant in the canonical UTC text form."""
    if at.tzinfo is None:
        raise ValueError("audit instants must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(seq: int, event: Event) -> bytes:
    """The bytes that are hashed for an event at position `seq`."""
    return canonical_of(
        seq,
        utc_text(event.at),
        event.type,
        event.opd,
        event.sop,
        event.case_id,
        event.actor,
        event.from_step,
        event.to_step,
        dict(event.data),
    )


def canonical_of(
    seq: int,
    at: str,
    type: str,
    opd: str | None,
    sop: str | None,
    case_id: str | None,
    actor: str | None,
    from_step: str | None,
    to_step: str | None,
    data: Any,
    plain: bool = False,
) -> bytes:
    """The canonical bytes of an event given as its parts, `at` already in canonical text.

    `plain=True` is the caller's word that `data` holds JSON's own types and no float
    (`dict`, `list`, `str`, `int`, `bool`, `None`), as a value read back by `orjson` from
    text without a fractional or exponent number does; it spares looking through it.
    """
    body = {
        "seq": seq,
        "at": at,
        "type": type,
        "opd": opd,
        "sop": sop,
        "case_id": case_id,
        "actor": actor,
        "from_step": from_step,
        "to_step": to_step,
        "data": data,
    }
    return canonical_json(body, plain)


_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        return all(map(_plain, value.values()))
    if kind is list:
        return all(map(_plain, value))
    return False


def canonical_json(value: Any, plain: bool = False) -> bytes:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` as
    UTF-8, byte for byte, written by orjson where it writes the same bytes.

    orjson sorts keys by code point and escapes the same characters as `json` for JSON's
    own types; it writes some floats differently (`0.00001` where `json` writes `1e-05`),
    refuses integers beyond 64 bits, non-text keys and lone surrogates, and encodes types
    `json` refuses (datetimes, UUIDs, enums). Everything but plain values goes to `json`,
    whose bytes are the definition (tests/test_canonical_fast.py compares both).
    Verifying millions of events is mostly this encoding: orjson does it several times
    faster than `json`.
    """
    if plain or type(value) is dict and _plain(value):
        try:
            return orjson.dumps(value, option=_SORTED)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits, a non-text key, a lone surrogate
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_SORTED = orjson.OPT_SORT_KEYS


def chain_hash(prev_hash: str, seq: int, event: Event) -> str:
    """The hash of an event chained after `prev_hash`."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(seq, event)).hexdigest()


def mask(value: object) -> str:
    """Hide personal data, keeping enough to recognise it: `3201********0001`, `B*** S******`."""
    text = str(value)
    if len(text) >= 12 and text.isdigit():
        return text[:4] + "*" * (len(text) - 8) + text[-4:]
    return " ".join(word[:1] + "*" * (len(word) - 1) for word in text.split(" "))


COMMITMENT_PREFIX = "hmac-sha256:"


def commitment(secret: bytes, name: str, value: object) -> str:
    """The commitment that stands in an event's `data` for a personal value."""
    message = json.dumps([name, value], separators=(",", ":"), ensure_ascii=False).encode()
    return COMMITMENT_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def is_commitment(value: object) -> bool:
    """True for a value that is a commitment (the prefix and 64 lowercase hex digits)."""
    return (
        isinstance(value, str)
        and len(value) == len(COMMITMENT_PREFIX) + 64
        and value.startswith(COMMITMENT_PREFIX)
        and all(c in "0123456789abcdef" for c in value[len(COMMITMENT_PREFIX) :])
    )
