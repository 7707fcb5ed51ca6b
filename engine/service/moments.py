"""The instants a reader names in a query: with an offset, or a plain date.

A plain date is a day as the office lives it: `since=2026-12-04` starts at midnight of that
day in the caller's office's time zone (Asia/Jakarta for the inspectorate and for offices
that set none), and `until=2026-12-04` ends at the next midnight, so the day is included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.service.context import Context
from engine.service.errors import Invalid
from engine.service.users import Principal
from engine.store.tables import CalendarZone

DEFAULT_ZONE = "Asia/Jakarta"


def office_zone(ctx: Context, principal: Principal) -> ZoneInfo:
    """The time zone of the caller's office (Asia/Jakarta when it set none)."""
    name = DEFAULT_ZONE
    if principal.opd is not None:
        with ctx.reader() as uow:
            row = uow.session.get(CalendarZone, principal.opd)
            if row is not None:
                name = row.timezone
    return ZoneInfo(name)


def instants(
    ctx: Context, principal: Principal, since: datetime | date | None, until: datetime | date | None
) -> tuple[datetime | None, datetime | None]:
    """`since` and `until` as UTC instants; plain dates are days in the office's zone."""
    zone: ZoneInfo | None = None

    def resolve(value: datetime | date | None, field: str, end: bool) -> datetime | None:
        nonlocal zone
        if value is None or isinstance(value, datetime):
            return value
        zone = zone or office_zone(ctx, principal)
        day = value + timedelta(days=1) if end else value
        try:
            return datetime.combine(day, time(0), zone).astimezone(UTC)
        except OverflowError:
            raise Invalid(
                "that date is outside the range sopflow keeps",
                [{"field": field, "message": "out of range"}],
            ) from None

    return resolve(since, "since", False), resolve(until, "until", True)
