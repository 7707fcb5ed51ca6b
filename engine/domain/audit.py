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
    body = {
        "seq": seq,
        "at": utc_text(event.at),
        "type": event.type,
        "opd": event.opd,
        "sop": event.sop,
        "case_id": event.case_id,
        "actor": event.actor,
        "from_step": event.from_step,
        "to_step": event.to_step,
        "data": dict(event.data),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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
