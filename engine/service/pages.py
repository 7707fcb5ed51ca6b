"""Cursor pagination: `?limit=` (default 50, at most 500) and an opaque `?cursor=`."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from engine.service.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(position: int) -> str:
    """An opaque cursor for the position after which the next page starts."""
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position a cursor stands for (0 for none); Invalid for a cursor we did not make."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        digits = text[1:]
        # at most 18 ASCII digits: a position fits the 64-bit columns it is compared with
        if text.startswith("p") and digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(digits)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Invalid("the cursor is not one this API gave", [{"field": "cursor", "message": "bad"}])


def check_limit(limit: int | None) -> int:
    """The page size asked for, within bounds."""
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(
            f"limit must be between 1 and {MAX_LIMIT}",
            [{"field": "limit", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    return limit


def page(items: list[Any], limit: int, position_of_last: int | None) -> dict[str, Any]:
    """`{"items", "next_cursor"}`; a next cursor only when the page came back full."""
    more = len(items) == limit and position_of_last is not None
    return {"items": items, "next_cursor": encode_cursor(position_of_last) if more else None}
