"""The audit trail as files process-mining tools read as they are: CSV and XES (IEEE 1849).

Both stream: rows are read in batches and written as they come, so a log of millions of
events never sits in memory. Both honour the trail's filters, and both carry personal
data only as the trail holds it: masked.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import quoteattr

from sqlalchemy import Select

from engine.domain.audit import utc_text
from engine.domain.model import SOP
from engine.service.context import Context
from engine.service.queries import EventFilter, trail_query
from engine.service.sops import find_row, parsed
from engine.service.users import Principal
from engine.store.tables import AuditEvent

BATCH = 2000
CSV_COLUMNS = (
    "case_id", "activity", "timestamp", "resource", "role", "opd", "sop", "step", "type",
    "seq", "hash",
)  # fmt: skip
ACTIVITIES = {
    "case.created": "open case",
    "case.closed": "close case",
    "case.received": "receive documents",
    "case.payment_recorded": "record payment",
    "sla.warned": "SLA warning",
    "sla.escalated": "SLA escalation",
    "sla.service_breached": "service time breached",
    "access.denied": "access denied",
}


REFUSALS = ("access.denied", "case.transition_refused")


def activity(row: AuditEvent) -> str:
    """The activity name of an event: the transition fired, or what happened."""
    transition = row.data.get("transition")
    if row.type == "case.transitioned" and transition:
        return str(transition)
    if row.type == "case.transition_refused" and transition:
        return f"refused: {transition}"
    return ACTIVITIES.get(row.type, row.type)


class _Roles:
    """The role behind each event, from its SOP (parsed once per export)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sops: dict[str, SOP | None] = {}

    def of(self, row: AuditEvent) -> str:
        if row.type in REFUSALS:
            # the role the attempt was made with, not the one it would have needed
            return ",".join(row.data.get("actor_roles", []))
        if row.sop is None or row.type.startswith("sla."):
            return ""
        if row.sop not in self.sops:
            with self.ctx.reader() as uow:
                found = find_row(uow.session, row.sop)
                self.sops[row.sop] = parsed(found) if found else None
        sop = self.sops[row.sop]
        step_id = row.from_step or row.to_step
        if sop is None or step_id is None:
            return ""
        try:
            step = sop.step(step_id)
        except KeyError:
            return ""
        transition = row.data.get("transition")
        for t in sop.transitions_from(step.id):
            if t.name == transition:
                return sop.role_for(t, step.id) or ""
        return step.role or ""


def _rows(ctx: Context, query: Select[Any], by_case: bool) -> Iterator[AuditEvent]:
    query = query.where(AuditEvent.case_id.is_not(None))  # type: ignore[union-attr]
    order = (AuditEvent.case_id, AuditEvent.seq) if by_case else (AuditEvent.seq,)
    with ctx.reader() as uow:
        result = uow.session.execute(
            query.order_by(*order).execution_options(yield_per=BATCH)
        ).scalars()
        yield from result


def csv_lines(ctx: Context, principal: Principal, filters: EventFilter) -> Iterator[str]:
    """The trail as CSV, one event a row, oldest first; a refusal is raised here, at once."""
    return _csv(ctx, trail_query(ctx, principal, filters))


def _csv(ctx: Context, query: Select[Any]) -> Iterator[str]:
    roles = _Roles(ctx)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for count, row in enumerate(_rows(ctx, query, by_case=False), 1):
        writer.writerow(
            (
                row.case_id,
                activity(row),
                utc_text(row.at),
                row.actor or "system",
                roles.of(row),
                row.opd or "",
                row.sop or "",
                row.from_step or row.to_step or "",
                row.type,
                row.seq,
                row.hash,
            )
        )
        if count % 500 == 0:
            yield flush()
    yield flush()


_XES_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <global scope="trace">
    <string key="concept:name" value="__INVALID__"/>
  </global>
  <global scope="event">
    <string key="concept:name" value="__INVALID__"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>
    <string key="lifecycle:transition" value="complete"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <classifier name="Resource" keys="org:resource"/>
  <string key="concept:name" value="sopflow audit trail"/>
"""


def _attr(tag: str, key: str, value: Any) -> str:
    return f"<{tag} key={quoteattr(key)} value={quoteattr(str(value))}/>"


def _xes_time(row: AuditEvent) -> str:
    text = utc_text(row.at)  # 2026-03-02T01:30:00.000000Z
    return text[:23] + "+00:00"


def xes_chunks(ctx: Context, principal: Principal, filters: EventFilter) -> Iterator[str]:
    """The trail as an XES log: a trace per case, its events in order; refusals at once."""
    return _xes(ctx, trail_query(ctx, principal, filters))


def _xes(ctx: Context, query: Select[Any]) -> Iterator[str]:
    roles = _Roles(ctx)
    yield _XES_HEAD
    current: str | None = None
    parts: list[str] = []
    for row in _rows(ctx, query, by_case=True):
        if row.case_id != current:
            if current is not None:
                parts.append("  </trace>\n")
            current = row.case_id
            parts.append(f"  <trace>\n    {_attr('string', 'concept:name', current)}\n")
            if row.sop:
                parts.append(f"    {_attr('string', 'sop', row.sop)}\n")
        attributes = [
            _attr("string", "concept:name", activity(row)),
            _attr("date", "time:timestamp", _xes_time(row)),
            _attr("string", "lifecycle:transition", "complete"),
            _attr("string", "org:resource", row.actor or "system"),
            _attr("string", "org:role", roles.of(row)),
            _attr("string", "org:group", row.opd or ""),
            _attr("string", "step", row.from_step or row.to_step or ""),
            _attr("string", "type", row.type),
            _attr("int", "seq", row.seq),
            _attr("string", "hash", row.hash),
        ]
        parts.append("    <event>\n      " + "\n      ".join(attributes) + "\n    </event>\n")
        if len(parts) >= 200:
            yield "".join(parts)
            parts = []
    if current is not None:
        parts.append("  </trace>\n")
    parts.append("</log>\n")
    yield "".join(parts)
