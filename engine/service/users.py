"""Users and their tokens: who is asking, and what kind of user they are."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from engine.domain.audit import Event
from engine.domain.validator import ID_SLUG, SOP_SLUG
from engine.service.context import Context
from engine.service.errors import Conflict, Invalid, Unauthenticated
from engine.store.tables import Opd, User
from engine.store.uow import UnitOfWork

_NAME = re.compile(r"^[\w.@-]{1,200}$")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    name: str
    opd: str | None
    roles: frozenset[str]
    admin: bool = False
    inspector: bool = False
    # keeps the calendar register: the whole deployment's, or with an OPD that office's own
    calendar_admin: bool = False
    # the office's data-protection officer: answers for its personal data, works no cases
    dpo: bool = False

    @property
    def staff(self) -> bool:
        """True for a member of an OPD's staff (admins included), never for an inspector
        or a data-protection officer."""
        return self.opd is not None and not self.inspector and not self.dpo

    def of_office(self, opd: str | None) -> bool:
        """True for anyone of that office (staff, admin, its DPO), never an inspector."""
        return opd is not None and self.opd == opd and not self.inspector

    def may_see_opd(self, opd: str) -> bool:
        """True when the caller may read this OPD's cases."""
        return self.inspector or self.opd == opd


def token_hash(token: str) -> str:
    """Tokens are stored only as their SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


# Known tokens are remembered briefly, so most requests cost no database round trip for
# authentication; users are never changed in place, so only a new user is news, and an
# unknown token is never remembered.
TOKEN_TTL = 30.0
_TOKENS_MAX = 10_000
_tokens: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
_tokens_lock = threading.Lock()


def authenticate(ctx: Context, authorization: str | None) -> Principal:
    """The principal behind an `Authorization: Bearer <token>` header, or Unauthenticated."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send `Authorization: Bearer <token>`; ask an admin for a token")
    digest = token_hash(token.strip())
    now = time.monotonic()
    with _tokens_lock:
        cached = _tokens.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
    with ctx.reader() as uow:
        user = uow.session.execute(
            select(User).where(User.token_hash == digest)
        ).scalar_one_or_none()
    if user is None:
        raise Unauthenticated("this token is not known; ask an admin for a new one")
    who = Principal(
        user.name,
        user.opd,
        frozenset(user.roles),
        user.admin,
        user.inspector,
        calendar_admin=user.calendar_admin,
        dpo=user.dpo,
    )
    with _tokens_lock:
        _tokens[digest] = (now + TOKEN_TTL, who)
        _tokens.move_to_end(digest)
        while len(_tokens) > _TOKENS_MAX:
            _tokens.popitem(last=False)
    return who


def ensure_opd(uow: UnitOfWork, opd: str, now: datetime) -> None:
    """Create the office row the first time it is named."""
    if uow.session.get(Opd, opd) is None:
        uow.session.add(Opd(id=opd, created_at=now))
        uow.session.flush()


def add_user(
    ctx: Context,
    name: str,
    opd: str | None = None,
    roles: tuple[str, ...] = (),
    admin: bool = False,
    inspector: bool = False,
    calendar_admin: bool = False,
    dpo: bool = False,
) -> tuple[Principal, str]:
    """Create a user; returns the principal and its token (shown once, stored hashed)."""
    errors = []
    if not _NAME.match(name):
        errors.append({"field": "name", "message": "use letters, digits, `.`, `@`, `_`, `-`"})
    if inspector and (opd or roles or admin):
        errors.append({"field": "opd", "message": "an inspector belongs to no OPD and holds no "
                       "roles or admin right"})  # fmt: skip
    if calendar_admin and (inspector or roles or admin):
        errors.append({"field": "calendar_admin", "message": "a calendar administrator "
                       "keeps the calendar register: no roles, admin or inspector"})  # fmt: skip
    if dpo and (inspector or roles or admin or calendar_admin or not opd):
        errors.append({"field": "dpo", "message": "a data-protection officer belongs to "
                       "one OPD (give --opd); no roles, admin or inspector right"})  # fmt: skip
    if not inspector and not calendar_admin and not opd:
        errors.append({"field": "opd", "message": "staff and admins belong to an OPD: give --opd"})
    if opd and not SOP_SLUG.match(opd):
        errors.append({"field": "opd", "message": f"`{opd}`: use lowercase letters, digits, `-`"})
    for role in roles:
        if not ID_SLUG.match(role):
            errors.append({"field": "roles", "message": f"role `{role}` is not a valid role id"})
    if errors:
        raise Invalid("the user cannot be created as given", errors)
    token = secrets.token_urlsafe(32)
    now = ctx.clock()
    with ctx.uow() as uow:
        if uow.session.execute(select(User.id).where(User.name == name)).first():
            raise Conflict(f"a user named `{name}` already exists")
        if opd:
            ensure_opd(uow, opd, now)
        uow.session.add(
            User(
                name=name,
                opd=opd,
                roles=sorted(set(roles)),
                admin=admin,
                inspector=inspector,
                calendar_admin=calendar_admin,
                dpo=dpo,
                token_hash=token_hash(token),
                created_at=now,
            )
        )
        kind = (
            "inspector" if inspector
            else "calendar-admin" if calendar_admin
            else "dpo" if dpo
            else "admin" if admin
            else "staff"
        )  # fmt: skip
        uow.record(
            Event("user.created", now, opd=opd, actor=None,
                  data={"user": name, "kind": kind, "roles": sorted(set(roles))})
        )  # fmt: skip
        uow.commit()
    who = Principal(
        name, opd, frozenset(roles), admin, inspector, calendar_admin=calendar_admin, dpo=dpo
    )
    return who, token
