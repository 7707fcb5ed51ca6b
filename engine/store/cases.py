"""A case's rows: loading a case to decide on, and saving what the decision says.

SQLAlchemy Core, not the ORM, on this path: a transition is the service's busiest command,
and the ORM's identity map, unit-of-work flush and attribute instrumentation cost more CPU
than the statements themselves. The statements are few and fixed: one to load the case
with its SOP version's checksum and its open visit, and at most five to save a decision
(void timers, the case with its version checked in the UPDATE's WHERE, the visit left, the
visit entered, the new timers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, insert, or_, select, update
from sqlmodel import Session

from engine.domain.case import (
    DECISION_RUNG,
    SERVICE_RUNG,
    CaseState,
    Decision,
    DecisionTimerCancelled,
    DecisionTimerScheduled,
    RungsCancelled,
    RungScheduled,
    ServiceTimerCancelled,
    ServiceTimerScheduled,
    StepEntered,
    StepLeft,
    Visit,
)
from engine.store.tables import Case, SlaTimer, SopVersion, StepVisit

CASES = Case.__table__  # type: ignore[attr-defined]
VISITS = StepVisit.__table__  # type: ignore[attr-defined]
TIMERS = SlaTimer.__table__  # type: ignore[attr-defined]
VERSIONS = SopVersion.__table__  # type: ignore[attr-defined]

# the columns a decision may change; the rest of a case row is other commands' to change
STATE_COLUMNS = (
    "step", "step_role", "step_entered_at", "step_due_at", "service_due_at",
    "service_due_frozen", "paused_since", "paused_seconds", "escalation_level", "status",
    "outcome", "closed_at", "fired_by", "flags", "extra_roles", "deemed_approved_at",
    "decision_due_at",
)  # fmt: skip


class StaleCase(Exception):
    """The case changed since it was loaded: its version is no longer the one decided on."""


def service_key(case_pk: int) -> str:
    """The firing key of a case's service-time breach: it fires once per case."""
    return f"c{case_pk}:service"


def decision_key(case_pk: int) -> str:
    """The firing key of a case's decision deadline: it fires once per case."""
    return f"c{case_pk}:decision"


def rung_key(visit_id: int, index: int) -> str:
    """The firing key of rung `index` on a step visit."""
    return f"v{visit_id}:r{index}"


@dataclass(frozen=True)
class OpenVisit:
    """The visit a case is in now, as the rules and the save need it."""

    id: int
    visit: Visit


_LOAD = (
    select(
        CASES,
        VERSIONS.c.checksum,
        VISITS.c.id.label("visit_id"),
        VISITS.c.step.label("visit_step"),
        VISITS.c.entered_at.label("visit_entered_at"),
        VISITS.c.paused.label("visit_paused"),
    )  # fmt: skip
    .join(VERSIONS, and_(VERSIONS.c.key == CASES.c.sop, VERSIONS.c.version == CASES.c.sop_version))
    .outerjoin(VISITS, and_(VISITS.c.case_pk == CASES.c.pk, VISITS.c.left_at.is_(None)))
)


# built once: building a statement costs more CPU than sending it
_UPDATE_CASE = (
    update(CASES)
    .where(CASES.c.pk == bindparam("_pk"), CASES.c.version == bindparam("_version"))
    .values(version=bindparam("_new_version"))
)
# the columns to set are the parameters' keys (Core's rule for an UPDATE or INSERT with none)
_LEFT = ("left_at", "left_by", "left_via", "dwell_seconds", "working_seconds")


def _leave(prefix: str, paused: bool) -> Any:
    """The UPDATE that ends a visit; in a paused step its time is the citizen's as well."""
    values = {name: bindparam(f"{prefix}{name}") for name in _LEFT}
    if paused:
        values["paused_seconds"] = bindparam(f"{prefix}working_seconds")
    return update(VISITS).where(VISITS.c.id == bindparam(f"{prefix}id")).values(values)


_LEAVE, _LEAVE_PAUSED = _leave("_", False), _leave("_", True)
_ENTER = insert(VISITS).returning(VISITS.c.id)
_ENTERED = ("case_pk", "sop", "step", "role", "paused", "entered_at", "entered_by", "due_at",
            "paused_seconds")  # fmt: skip
# PostgreSQL: the visit left in a CTE of the INSERT of the visit entered; every value is a
# named parameter, since a parameter named like a column would be set in both statements
_ENTER_NAMED = insert(VISITS).values({c: bindparam(f"e_{c}") for c in _ENTERED})
_ROTATE = _ENTER_NAMED.returning(VISITS.c.id).add_cte(_leave("l_", False).cte("left_visit"))
_ROTATE_PAUSED = _ENTER_NAMED.returning(VISITS.c.id).add_cte(_leave("l_", True).cte("left_visit"))
_VOID_VISIT = delete(TIMERS).where(TIMERS.c.visit_id == bindparam("_visit"))
_VOID_CASE = delete(TIMERS).where(
    TIMERS.c.case_pk == bindparam("_pk"), TIMERS.c.rung.in_(bindparam("_rungs", expanding=True))
)
_VOID_BOTH = delete(TIMERS).where(
    or_(
        TIMERS.c.visit_id == bindparam("_visit"),
        and_(
            TIMERS.c.case_pk == bindparam("_pk"),
            TIMERS.c.rung.in_(bindparam("_rungs", expanding=True)),
        ),
    )
)


def load(
    session: Session, case_id: str, lock: bool = False
) -> tuple[Case, str, OpenVisit | None] | None:
    """A case (detached: changing it writes nothing), its SOP version's checksum and its
    open visit, in one statement; None when there is no such case.

    With `lock`, the case's row is locked until the transaction ends (on PostgreSQL; a
    SQLite writer already holds the whole database).
    """
    query = _LOAD.where(CASES.c.id == case_id)
    if lock:
        query = query.with_for_update(of=CASES)
    row = session.connection().execute(query).first()
    if row is None:
        return None
    values = row._mapping
    case = Case(**{c.name: values[c] for c in CASES.c})
    visit = None
    if values["visit_id"] is not None:
        visit = OpenVisit(
            values["visit_id"],
            Visit(values["visit_step"], values["visit_entered_at"], values["visit_paused"]),
        )
    return case, values["checksum"], visit


def find(session: Session, case_id: str, lock: bool = False) -> tuple[Case, str] | None:
    """A case in the session (for the commands that change it through the ORM) and its SOP
    version's checksum; None when there is no such case."""
    query = (
        select(Case, SopVersion.checksum)
        .join(SopVersion, (SopVersion.key == Case.sop) & (SopVersion.version == Case.sop_version))
        .where(Case.id == case_id)
    )
    if lock:
        query = query.with_for_update(of=Case)  # type: ignore[arg-type]
    row = session.execute(query).first()
    return None if row is None else (row[0], row[1])


def load_rows(session: Session, pks: Iterable[int], lock: bool = False) -> list[Row[Any]]:
    """Cases as plain rows with their SOP version's checksum, in pk order (the order every
    writer locks them in: timers first, then cases); locked with `lock`."""
    query = (
        select(CASES, VERSIONS.c.checksum)
        .join(VERSIONS, and_(VERSIONS.c.key == CASES.c.sop,
                             VERSIONS.c.version == CASES.c.sop_version))
        .where(CASES.c.pk.in_(list(pks)))
        .order_by(CASES.c.pk)
    )  # fmt: skip
    if lock:
        query = query.with_for_update(of=CASES)
    return list(session.connection().execute(query))


def state_of(case: Any) -> CaseState:
    """The state the rules decide on, read off a case (a row or an object with its columns)."""
    return CaseState(
        step=case.step,
        step_role=case.step_role,
        step_entered_at=case.step_entered_at,
        step_due_at=case.step_due_at,
        service_due_at=case.service_due_at,
        service_due_frozen=case.service_due_frozen,
        paused_since=case.paused_since,
        paused_seconds=case.paused_seconds,
        escalation_level=case.escalation_level,
        status=case.status,
        outcome=case.outcome,
        closed_at=case.closed_at,
        fired_by={name: tuple(users) for name, users in case.fired_by.items()},
        flags=tuple(case.flags),
        extra_roles=tuple(case.extra_roles),
        deemed_approved_at=case.deemed_approved_at,
        decision_due_at=case.decision_due_at,
    )


def state_values(state: CaseState) -> dict[str, Any]:
    """A state as the case row's column values."""
    values: dict[str, Any] = {name: getattr(state, name) for name in STATE_COLUMNS}
    values["fired_by"] = {name: list(users) for name, users in state.fired_by.items()}
    values["flags"] = list(state.flags)
    values["extra_roles"] = list(state.extra_roles)
    values["flagged"] = bool(state.flags)
    return values


def save_states(session: Session, cases: list[tuple[Any, CaseState]]) -> dict[str, int]:
    """Write the new states of loaded cases in one executemany, each case's version checked
    (else StaleCase); the version each has after this transaction, by case id."""
    if not cases:
        return {}
    params = [
        {**state_values(state), "_pk": case.pk, "_version": case.version,
         "_new_version": case.version + 1}
        for case, state in cases
    ]  # fmt: skip
    updated = session.connection().execute(_UPDATE_CASE, params).rowcount
    if updated != len(params):
        raise StaleCase(f"{len(params) - updated} case(s) changed meanwhile")
    return {case.id: case.version + 1 for case, _state in cases}


def save(
    session: Session,
    case: Case,
    visit: OpenVisit | None,
    decision: Decision,
    changes: dict[str, Any] | None = None,
) -> int | None:
    """Write a decision on a loaded case: its timers, its row and its visits.

    The case row is updated only if its version is still the one loaded (else StaleCase);
    `case` is then given the new state and version. `changes`: other columns the same
    command changed. Returns the id of the visit entered, if one was.

    The timers are deleted before the case row is updated: the sweep locks timers before
    cases, so both always take their locks in the same order.
    """
    assert case.pk is not None
    events = decision.events
    conn = session.connection()
    rungs = [SERVICE_RUNG] * any(isinstance(e, ServiceTimerCancelled) for e in events)
    rungs += [DECISION_RUNG] * any(isinstance(e, DecisionTimerCancelled) for e in events)
    visit_void = visit is not None and any(isinstance(e, RungsCancelled) for e in events)
    if visit_void and rungs:
        assert visit is not None
        conn.execute(_VOID_BOTH, {"_visit": visit.id, "_pk": case.pk, "_rungs": rungs})
    elif visit_void:
        assert visit is not None
        conn.execute(_VOID_VISIT, {"_visit": visit.id})
    elif rungs:
        conn.execute(_VOID_CASE, {"_pk": case.pk, "_rungs": rungs})
    values = {**state_values(decision.state), **(changes or {})}
    updated = conn.execute(
        _UPDATE_CASE,
        {**values, "_pk": case.pk, "_version": case.version, "_new_version": case.version + 1},
    )
    if updated.rowcount != 1:
        raise StaleCase(case.id)
    for name, value in values.items():
        setattr(case, name, value)
    case.version += 1
    left = next((e for e in events if isinstance(e, StepLeft)), None) if visit else None
    entered = next((e for e in events if isinstance(e, StepEntered)), None)
    entered_id = None
    if left is not None and entered is not None and conn.dialect.name == "postgresql":
        assert visit is not None
        # one round trip: the visit left, in a CTE, and the visit entered
        statement = _ROTATE_PAUSED if left.paused else _ROTATE
        entering = {f"e_{k}": v for k, v in _entered_params(case, entered).items()}
        params = _left_params(visit.id, left, "l_") | entering
        entered_id = int(conn.execute(statement, params).scalar_one())
    else:
        if left is not None:
            assert visit is not None
            conn.execute(
                _LEAVE_PAUSED if left.paused else _LEAVE, _left_params(visit.id, left, "_")
            )
        if entered is not None:
            entered_id = enter(session, case, entered)
    timers = timer_rows(case.pk, entered_id, decision)
    if timers:
        conn.execute(insert(TIMERS), timers)
    return entered_id


def _left_params(visit_id: int, event: StepLeft, prefix: str) -> dict[str, Any]:
    values = {
        "left_at": event.at,
        "left_by": event.by,
        "left_via": event.via,
        "dwell_seconds": event.dwell_seconds,
        "working_seconds": event.working_seconds,
    }
    return {f"{prefix}{k}": v for k, v in values.items()} | {f"{prefix}id": visit_id}


def _entered_params(case: Case, event: StepEntered) -> dict[str, Any]:
    return {
        "case_pk": case.pk,
        "sop": case.sop,
        "step": event.step,
        "role": event.role,
        "paused": event.paused,
        "entered_at": event.at,
        "entered_by": event.by,
        "due_at": event.due_at,
        "paused_seconds": 0.0,
    }


def enter(session: Session, case: Case, event: StepEntered) -> int:
    """Insert the visit a case entered; returns its id."""
    return int(session.connection().execute(_ENTER, _entered_params(case, event)).scalar_one())


def schedule(session: Session, case_pk: int, visit_id: int | None, decision: Decision) -> None:
    """Insert the timers a decision scheduled (for a case inserted apart, when opened)."""
    timers = timer_rows(case_pk, visit_id, decision)
    if timers:
        session.connection().execute(insert(TIMERS), timers)


def timer_rows(case_pk: int, visit_id: int | None, decision: Decision) -> list[dict[str, Any]]:
    """The `sla_timer` rows of the timers a decision scheduled."""
    return [t for e in decision.events if (t := _timer(case_pk, visit_id, e)) is not None]


def _timer(case_pk: int, visit_id: int | None, event: object) -> dict[str, Any] | None:
    row: dict[str, Any] = {"case_pk": case_pk, "visit_id": None, "to_role": None, "flag": None}
    if isinstance(event, RungScheduled):
        assert visit_id is not None
        return row | {
            "due_at": event.due,
            "visit_id": visit_id,
            "rung": event.index,
            "action": event.action,
            "to_role": event.to_role,
            "flag": event.flag,
            "key": rung_key(visit_id, event.index),
        }
    if isinstance(event, ServiceTimerScheduled):
        return row | {"due_at": event.due, "rung": SERVICE_RUNG, "action": "service",
                      "key": service_key(case_pk)}  # fmt: skip
    if isinstance(event, DecisionTimerScheduled):
        return row | {"due_at": event.due, "rung": DECISION_RUNG, "action": "decision",
                      "to_role": event.to_role, "flag": event.flag,
                      "key": decision_key(case_pk)}  # fmt: skip
    return None
