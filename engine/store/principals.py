"""Who a token belongs to: the one read every API request makes before its command."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlmodel import Session

from engine.store.tables import User

_USERS = User.__table__  # type: ignore[attr-defined]
# built once, read as a plain row: this runs on every request, and an ORM object per
# request cost more CPU than the query
_BY_TOKEN = select(
    _USERS.c.name, _USERS.c.opd, _USERS.c.roles, _USERS.c.admin, _USERS.c.inspector,
    _USERS.c.calendar_admin, _USERS.c.dpo, _USERS.c.disabled_at, _USERS.c.token_expires_at,
).where(_USERS.c.token_hash == bindparam("digest"))  # fmt: skip


def by_token(session: Session, digest: str) -> Row[Any] | None:
    """The user whose token hashes to `digest`, as a row; None when there is none."""
    return session.connection().execute(_BY_TOKEN, {"digest": digest}).first()
