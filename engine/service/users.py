"""Users and their tokens: who is asking, and what kind of user they are."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from engine.domain.audit import Event
from engine.domain.validator import ID_SLUG, SOP_SLUG
from engine.service.context import Context
from engine.service.errors import Conflict, Invalid, NotFound, Unauthenticated
from engine.store import principals
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


# A token is looked up on every request (one indexed read of `app_user.token_hash`): a
# replaced token, a disabled user or an expired token stops working at once, in every process.
NEW_TOKEN = "get a new one with `sopflow user token NAME` or from your office's admin"


def authenticate(ctx: Context, authorization: str | None) -> Principal:
    """The principal behind an `Authorization: Bearer <token>` header, or Unauthenticated."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(f"send `Authorization: Bearer <token>`; {NEW_TOKEN}")
    digest = token_hash(token.strip())
    with ctx.reader() as uow:
        user = principals.by_token(uow.session, digest)
    if user is None:
        raise Unauthenticated(f"this token is not known (it may have been replaced); {NEW_TOKEN}")
    if user.disabled_at is not None:
        raise Unauthenticated(
            f"user `{user.name}` is disabled; your office's admin can enable it again"
        )
    if user.token_expires_at is not None and user.token_expires_at <= ctx.clock():
        raise Unauthenticated(
            f"this token expired at {user.token_expires_at.isoformat()}; {NEW_TOKEN}"
        )
    return Principal(
        user.name,
        user.opd,
        frozenset(user.roles),
        user.admin,
        user.inspector,
        calendar_admin=user.calendar_admin,
        dpo=user.dpo,
    )


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
    expires_at: datetime | None = None,
) -> tuple[Principal, str]:
    """Create a user; returns the principal and its token (shown once, stored hashed).

    `expires_at`: when the token stops working (None: it does not expire)."""
    errors = []
    if not _NAME.fullmatch(name):
        errors.append({"field": "name", "message": "use letters, digits, `.`, `@`, `_`, `-` "
                       "(no spaces, tabs or line breaks)"})  # fmt: skip
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
    _check_expiry(expires_at, now)
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
                token_issued_at=now,
                token_expires_at=expires_at,
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


# --- managing users: listing, disabling, enabling, new tokens ---------------------------

_EXPIRY = re.compile(r"(\d{1,5})\s*([hdw])")
_UNIT = {"h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(text: str, now: datetime) -> datetime:
    """`90d`, `12h`, `2w` from now, or an absolute date (the start of that day, UTC) or an
    ISO 8601 instant with an offset; Invalid otherwise."""
    text = text.strip()
    found = _EXPIRY.fullmatch(text)
    if found:
        return now + timedelta(seconds=int(found[1]) * _UNIT[found[2]])
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        instant = datetime.fromisoformat(text)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise Invalid(
            "the expiry is not understood",
            [{"field": "expires", "message": f"`{text[:40]}`: give a duration from now "
              "(`90d`, `12h`, `2w`), a date (`2027-03-31`) or an instant with its offset"}],
        )  # fmt: skip
    return instant.astimezone(UTC)


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise Invalid(
            "the token would be expired already",
            [{"field": "expires", "message": f"{expires_at.isoformat()} is not in the future"}],
        )


def user_view(user: User, now: datetime) -> dict[str, Any]:
    """A user as listed: never the token, only when it was issued and when it expires."""
    expired = user.token_expires_at is not None and user.token_expires_at <= now
    return {
        "name": user.name,
        "opd": user.opd,
        "kind": _kind(user),
        "roles": list(user.roles),
        "status": "disabled" if user.disabled_at else "token expired" if expired else "active",
        "disabled_at": user.disabled_at,
        "token_issued_at": user.token_issued_at or user.created_at,
        "token_expires_at": user.token_expires_at,
        "created_at": user.created_at,
    }


def _kind(user: User) -> str:
    return (
        "inspector" if user.inspector
        else "calendar-admin" if user.calendar_admin
        else "dpo" if user.dpo
        else "admin" if user.admin
        else "staff"
    )  # fmt: skip


def list_users(
    ctx: Context,
    principal: Principal | None,
    opd: str | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> list[Any]:
    """Users by name (`limit` of them, after the name `after`): an office's admin sees their
    office's, an inspector (or the command line, `principal` None) everyone's or `opd`'s;
    anyone else is refused."""
    from engine.service.refusals import deny

    if principal is not None and not principal.inspector:
        if not (principal.admin and principal.staff):
            deny(ctx, principal, "only an office's admin or an inspector lists users",
                 action="list_users")  # fmt: skip
        if opd is not None and opd != principal.opd:
            return []
        opd = principal.opd
    now = ctx.clock()
    query = select(User).order_by(User.name)
    if opd is not None:
        query = query.where(User.opd == opd)
    if after is not None:
        query = query.where(User.name > after)
    if limit is not None:
        query = query.limit(limit)
    with ctx.reader() as uow:
        return [user_view(u, now) for u in uow.session.execute(query).scalars()]


def _managed(uow: UnitOfWork, ctx: Context, principal: Principal | None, name: str,
             action: str) -> User:  # fmt: skip
    """The user `name`, locked, if the caller may manage it (its office's admin; the command
    line always); refusals are recorded."""
    from engine.service.refusals import deny, refuse

    user = uow.session.execute(
        select(User).where(User.name == name).with_for_update()
    ).scalar_one_or_none()
    if principal is None:
        if user is None:
            raise NotFound(f"no user `{name}`")
        return user
    if user is None or not (principal.inspector or user.opd == principal.opd):
        opd = user.opd if user is not None else None
        uow.rollback()
        refuse(ctx, NotFound(f"no user `{name}`"), "access.denied", principal,
               data={"action": action}, opd=opd)  # fmt: skip
    if not (principal.admin and principal.staff):
        uow.rollback()
        deny(ctx, principal, "only the office's admin manages its users", opd=user.opd,
             action=action, user=name)  # fmt: skip
    return user


def set_disabled(
    ctx: Context, principal: Principal | None, name: str, disabled: bool, actor: str | None = None
) -> dict[str, Any]:
    """Disable (or enable again) a user: a disabled user's token is refused at once."""
    now = ctx.clock()
    action = "disable_user" if disabled else "enable_user"
    with ctx.uow() as uow:
        user = _managed(uow, ctx, principal, name, action)
        if principal is not None and disabled and user.name == principal.name:
            raise Conflict("an admin cannot disable themselves; ask another admin")
        if (user.disabled_at is not None) != disabled:
            user.disabled_at = now if disabled else None
            uow.session.add(user)
            uow.record(
                Event("user.disabled" if disabled else "user.enabled", now, opd=user.opd,
                      actor=principal.name if principal else actor, data={"user": user.name})
            )  # fmt: skip
        view = user_view(user, now)
        uow.commit()
    return view


def issue_token(
    ctx: Context,
    principal: Principal | None,
    name: str,
    expires_at: datetime | None = None,
    actor: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A new token for a user; the old one stops working at once. Returns the user and the
    token (shown once, stored hashed)."""
    now = ctx.clock()
    _check_expiry(expires_at, now)
    token = secrets.token_urlsafe(32)
    with ctx.uow() as uow:
        user = _managed(uow, ctx, principal, name, "issue_token")
        user.token_hash = token_hash(token)
        user.token_issued_at = now
        user.token_expires_at = expires_at
        uow.session.add(user)
        data: dict[str, Any] = {"user": user.name}
        data["expires_at"] = expires_at.isoformat() if expires_at else None
        uow.record(
            Event("user.token_issued", now, opd=user.opd,
                  actor=principal.name if principal else actor, data=data)
        )  # fmt: skip
        view = user_view(user, now)
        uow.commit()
    return view, token


def user_warnings(ctx: Context, opd: str | None, roles: tuple[str, ...]) -> list[str]:
    """Warnings for an office or roles no published SOP uses, with the closest names."""
    from engine.domain.validator import suggest
    from engine.service.sops import latest_rows, parsed

    if opd is None:
        return []
    with ctx.reader() as uow:
        sops = [parsed(row) for row in latest_rows(uow.session)]
    offices: set[str] = set()
    held: dict[str, set[str]] = {}  # office -> roles its staff work in published SOPs
    for sop in sops:
        offices.add(sop.opd)
        for role in sop.roles:
            office = sop.role_opds.get(role, sop.opd)
            offices.add(office)
            held.setdefault(office, set()).add(role)
    warnings = []
    if opd not in offices:
        tail = suggest(opd, offices) if offices else " (no SOP is published yet)"
        warnings.append(f"no published SOP is served by office `{opd}`{tail}")
        return warnings
    for role in roles:
        if role not in held.get(opd, set()):
            warnings.append(f"no published SOP gives role `{role}` to office `{opd}`"
                            + suggest(role, held.get(opd, set())))  # fmt: skip
    return warnings
