"""`sopflow calendar`: the deployment's calendar register from the command line."""

from __future__ import annotations

import getpass
import sys
from datetime import date

import click

from engine.service.errors import ServiceError


def _day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"`{value}` is not a date; write it like 2026-09-10") from None


def _operator():  # type: ignore[no-untyped-def]
    from engine.service.users import Principal

    return Principal(f"cli:{getpass.getuser()}", None, frozenset(), calendar_admin=True)


def _run(change):  # type: ignore[no-untyped-def]
    from sopflow.cli import _context, _fail

    try:
        return change(_context(), _operator())
    except ServiceError as e:
        _fail(e)
        sys.exit(1)


@click.group()
def calendar() -> None:
    """The working calendar register: decreed days off, Ramadan, office time zones."""


@calendar.command("add")
@click.argument("day", metavar="DATE", callback=_day)
@click.option("--until", callback=_day, help="last day of a period, inclusive")
@click.option("--reason", required=True, help="the decree, e.g. `SKB 3 Menteri 2/2026`")
@click.option("--opd", help="an office's own day off (a regency's anniversary)")
@click.option("--cuti-bersama", is_flag=True, help="joint leave: units that serve on it work")
def add(day: date, until: date | None, reason: str, opd: str | None, cuti_bersama: bool) -> None:
    """Make DATE (to --until) non-working days; open deadlines move."""
    from engine.service.calendars import add_days

    out = _run(lambda ctx, who: add_days(ctx, who, day, until, reason, opd, cuti_bersama))
    where = f" for {opd}" if opd else ""
    click.echo(f"{out['date']}..{out['until']} not working{where}; "
               f"{out['rescheduled']} open deadlines moved")  # fmt: skip


@calendar.command("remove")
@click.argument("day", metavar="DATE", callback=_day)
@click.option("--reason", required=True, help="the decree that makes it a working day")
@click.option("--opd", help="an office's own day off")
def remove(day: date, reason: str, opd: str | None) -> None:
    """Make DATE a working day again; open deadlines move."""
    from engine.service.calendars import remove_day

    out = _run(lambda ctx, who: remove_day(ctx, who, day, reason, opd))
    click.echo(f"{out['date']} is a working day; {out['rescheduled']} open deadlines moved")


@calendar.command("ramadan")
@click.argument("year", type=int)
@click.argument("first", metavar="FROM", callback=_day)
@click.argument("last", metavar="TO", callback=_day)
@click.option("--reason", required=True, help="the sidang isbat or the Minister's circular")
def ramadan(year: int, first: date, last: date, reason: str) -> None:
    """Fix the dates of YEAR's Ramadan (1 Ramadan to its last day)."""
    from engine.service.calendars import set_ramadan

    out = _run(lambda ctx, who: set_ramadan(ctx, who, year, first, last, reason))
    click.echo(f"Ramadan {year}: {out['from']}..{out['to']}; "
               f"{out['rescheduled']} open deadlines moved")  # fmt: skip


@calendar.command("zone")
@click.argument("opd")
@click.argument("zone")
@click.option("--reason", required=True, help="why the office keeps this time")
def zone(opd: str, zone: str, reason: str) -> None:
    """Set OPD's default time zone (Asia/Jakarta, Asia/Makassar, Asia/Jayapura)."""
    from engine.service.calendars import set_zone

    out = _run(lambda ctx, who: set_zone(ctx, who, opd, zone, reason))
    click.echo(f"{opd} keeps {zone}; {out['rescheduled']} open deadlines moved")


@calendar.command("show")
@click.argument("year", type=int)
@click.option("--opd", help="include that office's own days")
def show(year: int, opd: str | None) -> None:
    """The non-working days and periods of YEAR, decreed or estimated."""
    from engine.service.calendars import year_view
    from sopflow.cli import _context, _fail

    try:
        view = year_view(_context(), year, opd)
    except ServiceError as e:
        _fail(e)
        return
    click.echo(f"{year}: {view['status']} (holidays {view['holidays']}, "
               f"Ramadan {view['ramadan']})")  # fmt: skip
    for item in view["items"]:
        span = item["date"] if item["until"] == item["date"] else f"{item['date']}..{item['until']}"
        office = f" [{item['opd']}]" if item["opd"] else ""
        click.echo(f"{span:22} {item['kind']:12} {item['status']:9} {item['reason']}{office}")
