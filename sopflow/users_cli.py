"""`sopflow user list|disable|enable|token`: the users of a deployment, managed from its
command line (an office's admin does the same for their office over the API)."""

from __future__ import annotations

import getpass
from typing import Any

import click

from engine.service.errors import ServiceError


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


def add_commands(user: click.Group) -> None:
    """Add the commands to the `sopflow user` group."""
    from sopflow.cli import EXPIRES_HELP, _context, _fail

    @user.command("list")
    @click.option("--opd", help="only this office's users")
    def user_list(opd: str | None) -> None:
        """List users: name, office, kind, roles, status and when the token expires."""
        from engine.service.users import list_users

        users = list_users(_context(), None, opd)
        if not users:
            click.echo(f"no users{f' of {opd}' if opd else ''}", err=True)
            return
        rows = [("NAME", "OPD", "KIND", "ROLES", "STATUS", "TOKEN EXPIRES")]
        rows += [_row(u) for u in users]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())

    @user.command("disable")
    @click.argument("name")
    def user_disable(name: str) -> None:
        """Disable a user: their token is refused at once, until `sopflow user enable`."""
        from engine.service.users import set_disabled

        try:
            set_disabled(_context(), None, name, True, actor=_operator())
        except ServiceError as e:
            _fail(e)
        click.echo(f"user `{name}` disabled; its token is refused from now on")

    @user.command("enable")
    @click.argument("name")
    def user_enable(name: str) -> None:
        """Enable a disabled user again (with the token they had)."""
        from engine.service.users import set_disabled

        try:
            set_disabled(_context(), None, name, False, actor=_operator())
        except ServiceError as e:
            _fail(e)
        click.echo(f"user `{name}` enabled")

    @user.command("token")
    @click.argument("name")
    @click.option("--expires-in", "expires", metavar="WHEN", help=EXPIRES_HELP)
    def user_token(name: str, expires: str | None) -> None:
        """Issue a new token for a user and print it (on the last line; shown only once).

        The old token stops working at once."""
        from engine.service.users import issue_token, parse_expiry

        context = _context()
        try:
            expires_at = parse_expiry(expires, context.clock()) if expires else None
            view, token = issue_token(context, None, name, expires_at, actor=_operator())
        except ServiceError as e:
            _fail(e)
        until = view["token_expires_at"]
        click.echo(
            f"new token for `{name}`"
            + (f", valid until {until.isoformat()}" if until else "")
            + "; the old one no longer works"
            + ("; the user is disabled: `sopflow user enable` it" if view["disabled_at"] else "")
        )
        click.echo(token)


def _row(u: dict[str, Any]) -> tuple[str, ...]:
    expires = u["token_expires_at"]
    return (
        u["name"],
        u["opd"] or "-",
        u["kind"],
        ",".join(u["roles"]) or "-",
        u["status"],
        expires.isoformat() if expires else "never",
    )
