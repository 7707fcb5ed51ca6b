"""The relational model: one database is the single source of truth."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    LargeBinary,
    SmallInteger,
    Text,
    TextClause,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import declared_attr
from sqlmodel import Field, SQLModel

from engine.store.types import UTCDateTime


def instant(nullable: bool = False, index: bool = False) -> Any:
    """A timezone-aware UTC instant column."""
    return Field(
        default=None if nullable else ...,
        sa_type=UTCDateTime,  # type: ignore[call-overload]
        nullable=nullable,
        index=index,
    )


def json_list() -> Any:
    """A JSON list column."""
    return Field(default_factory=list, sa_column_kwargs={"nullable": False}, sa_type=JSON)


def json_map() -> Any:
    """A JSON object column."""
    return Field(default_factory=dict, sa_column_kwargs={"nullable": False}, sa_type=JSON)


_FLAG_SET = {
    "postgresql": "(data ->> '{key}') = 'true'",
    "sqlite": "json_extract(data, '$.{key}') = 1",
}


def flag_is_set(dialect: str, key: str) -> TextClause:
    """The condition "`data` has `key: true`", as the partial indexes on it state it.

    A query must state it in the same words for the database to use those indexes.
    """
    return text(_FLAG_SET[dialect].format(key=key))


def flagged(key: str) -> dict[str, Any]:
    """A partial index's condition on each database: `data` has `key: true`."""
    return {f"{dialect}_where": flag_is_set(dialect, key) for dialect in _FLAG_SET}


class Opd(SQLModel, table=True):
    """A local-government office."""

    __tablename__ = "opd"
    id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = instant()
    webhook_url: str | None = Field(default=None, max_length=500)
    # the Standard Webhooks signing secret (`whsec_...`), shown once when the webhook is set
    webhook_secret: str | None = Field(default=None, max_length=64)


class User(SQLModel, table=True):
    """Staff, an OPD admin or an inspector, known by the hash of their API token."""

    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    opd: str | None = Field(default=None, foreign_key="opd.id", index=True)
    roles: list[str] = json_list()
    admin: bool = False
    inspector: bool = False
    # keeps the deployment's calendar register (holidays, cuti bersama, Ramadan, zones)
    calendar_admin: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    # the office's data-protection officer (UU 27/2022): erases closed cases' personal data
    dpo: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = instant()
    # when the current token was issued and when it stops working (None: never)
    token_issued_at: datetime | None = instant(nullable=True)
    token_expires_at: datetime | None = instant(nullable=True)
    # a disabled user's token is refused until the user is enabled again
    disabled_at: datetime | None = instant(nullable=True)


class SopVersion(SQLModel, table=True):
    """A published version of an SOP: the source as sent, never changed."""

    __tablename__ = "sop_version"
    key: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    opd: str = Field(foreign_key="opd.id", index=True)
    title: str
    source: str = Field(sa_type=Text)
    checksum: str = Field(max_length=64)
    published_at: datetime = instant()
    published_by: str


class Case(SQLModel, table=True):
    """A citizen's request moving through one SOP version."""

    __tablename__ = "sop_case"
    __table_args__ = (
        Index("ix_sop_case_opd_pk", "opd", "pk"),
        Index("ix_sop_case_sop_step", "sop", "step"),
    )
    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=32)
    tracking_code: str = Field(unique=True, max_length=32)
    sop: str = Field(max_length=64)
    sop_version: int
    opd: str = Field(foreign_key="opd.id")
    status: str = Field(default="open", max_length=8)
    outcome: str | None = Field(default=None, max_length=16)
    step: str = Field(max_length=64)
    step_role: str | None = Field(default=None, max_length=64)
    step_entered_at: datetime = instant()
    step_due_at: datetime | None = instant(nullable=True)
    service_due_at: datetime | None = instant(nullable=True)
    escalation_level: int = 0
    flags: list[str] = json_list()
    flagged: bool = Field(default=False, index=True)  # any flag: a filter the index serves
    received: list[str] = json_list()
    # transition name -> user names who fired it on this case (separation of duties)
    fired_by: dict[str, list[str]] = json_map()
    # roles the case was escalated to: they may act on it from then on
    extra_roles: list[str] = json_list()
    paid_total: int = Field(default=0, sa_type=BigInteger)
    # the applicant's data in clear; it never enters the audit chain
    fields: dict[str, Any] = json_map()
    version: int = 1
    created_at: datetime = instant()
    created_by: str
    closed_at: datetime | None = instant(nullable=True)
    # the service clock stops while the case waits on the citizen: when it stopped, and the
    # due instant it had then (it moves later by the working time spent waiting)
    paused_since: datetime | None = instant(nullable=True)
    service_due_frozen: datetime | None = instant(nullable=True)
    # a due instant falls in a year whose holidays or Ramadan are not yet decreed
    deadline_estimated: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    # working seconds spent waiting on the citizen, in all
    paused_seconds: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    # paid towards the fee or the levy's bill (payments naming a charge are not counted)
    fee_paid: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
    # a levy's current bill (the SKRD) as the API shows it; every bill is a `bill` row
    bill: dict[str, Any] | None = Field(default=None, sa_type=JSON, nullable=True)
    # the legal moment the application was deemed granted (fiktif positif), and the
    # deadline to issue the decision after it
    deemed_approved_at: datetime | None = instant(nullable=True)
    decision_due_at: datetime | None = instant(nullable=True)
    # when the case's personal data was erased (by its office's DPO or at retention's end)
    erased_at: datetime | None = instant(nullable=True)

    @declared_attr  # type: ignore[misc]
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        # optimistic concurrency: every UPDATE checks and bumps `version`, and one that
        # finds another version updates nothing and raises StaleDataError
        return {"version_id_col": cls.__table__.c.version}


class StepVisit(SQLModel, table=True):
    """One stay of a case in one step: when it entered and left, who moved it, its due."""

    __tablename__ = "step_visit"
    __table_args__ = (
        Index("ix_step_visit_sop_step_entered", "sop", "step", "entered_at"),
        # a period of one SOP, or of all (the reports)
        Index("ix_step_visit_sop_entered", "sop", "entered_at"),
        Index("ix_step_visit_entered", "entered_at"),
        # what waits now: the few open visits among millions
        Index(
            "ix_step_visit_open",
            "sop",
            "step",
            postgresql_where=text("left_at IS NULL"),
            sqlite_where=text("left_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_pk: int = Field(foreign_key="sop_case.pk", index=True)
    sop: str = Field(max_length=64)
    step: str = Field(max_length=64)
    role: str | None = Field(default=None, max_length=64)
    paused: bool = False
    entered_at: datetime = instant()
    entered_by: str
    due_at: datetime | None = instant(nullable=True)
    left_at: datetime | None = instant(nullable=True)
    left_by: str | None = None
    left_via: str | None = None
    # working seconds of this visit spent waiting on the citizen
    paused_seconds: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    # how long the visit lasted, set when it ends: wall-clock and working-time seconds
    dwell_seconds: float | None = None
    working_seconds: float | None = None


class ReceivedDocument(SQLModel, table=True):
    """A requirement (persyaratan) marked received on a case."""

    __tablename__ = "received_document"
    __table_args__ = (UniqueConstraint("case_pk", "requirement"),)
    id: int | None = Field(default=None, primary_key=True)
    case_pk: int = Field(foreign_key="sop_case.pk")
    requirement: str = Field(max_length=64)
    received_at: datetime = instant()
    received_by: str


class Payment(SQLModel, table=True):
    """A payment recorded on a case: evidence, never refused for its amount."""

    __tablename__ = "payment"
    id: int | None = Field(default=None, primary_key=True)
    case_pk: int = Field(foreign_key="sop_case.pk", index=True)
    amount: int = Field(sa_type=BigInteger)
    expected: int = Field(sa_type=BigInteger)
    method: str = Field(max_length=16)
    receipt: str | None = Field(default=None, max_length=200)
    fee_mismatch: bool = False
    recorded_at: datetime = instant()
    recorded_by: str
    charge: str | None = Field(default=None, max_length=64)  # a declared charge it pays


class Bill(SQLModel, table=True):
    """A bill (SKRD) for a levy on a case; the latest supersedes the earlier ones."""

    __tablename__ = "bill"
    id: int | None = Field(default=None, primary_key=True)
    case_pk: int = Field(foreign_key="sop_case.pk", index=True)
    amount: int = Field(sa_type=BigInteger)
    reference: str = Field(max_length=100)
    basis: str = Field(max_length=500)
    waiver: str | None = Field(default=None, max_length=500)
    billed_at: datetime = instant()
    billed_by: str = Field(max_length=200)


class AuditEvent(SQLModel, table=True):
    """One link of the append-only hash chain (see engine.domain.audit for its form)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_case_seq", "case_id", "seq"),
        Index("ix_audit_event_opd_seq", "opd", "seq"),
        Index("ix_audit_event_type_at", "type", "at"),
        # the few events flagged for the inspectorate, among millions
        Index("ix_audit_event_off_hours", "at", **flagged("off_hours")),
        Index("ix_audit_event_fee_mismatch", "at", **flagged("fee_mismatch")),
    )
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = instant(index=True)
    type: str = Field(max_length=40)
    opd: str | None = Field(default=None, max_length=64)
    sop: str | None = Field(default=None, max_length=64)
    case_id: str | None = Field(default=None, max_length=32)
    actor: str | None = Field(default=None, max_length=200, index=True)
    from_step: str | None = Field(default=None, max_length=64)
    to_step: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = json_map()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # the case's version once the event's transaction changed it: outside the hash, so a
    # stale If-Match can be told what changed since the version it names
    case_version: int | None = None


class SlaTimer(SQLModel, table=True):
    """A rung of an escalation ladder (or the service time) that falls due at `due_at`.

    Created in the transaction that enters a step, deleted in the one that leaves it or
    fires it; a due row stays due until a sweep fires it, so no rung is lost.
    """

    __tablename__ = "sla_timer"
    id: int | None = Field(default=None, primary_key=True)
    due_at: datetime = instant(index=True)
    case_pk: int = Field(foreign_key="sop_case.pk", index=True)
    visit_id: int | None = Field(default=None, foreign_key="step_visit.id", index=True)
    rung: int  # index in the step's ladder; SERVICE_RUNG for the service time
    action: str = Field(max_length=16)  # warn | escalate | service
    to_role: str | None = Field(default=None, max_length=64)
    flag: str | None = Field(default=None, max_length=32)
    key: str = Field(unique=True, max_length=80)


class SlaFiring(SQLModel, table=True):
    """A rung that fired; the unique key makes a rung fire at most once."""

    __tablename__ = "sla_firing"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=80)
    case_pk: int = Field(foreign_key="sop_case.pk", index=True)
    due_at: datetime = instant()
    fired_at: datetime = instant()


class Notification(SQLModel, table=True):
    """A message in a user's inbox."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_id", "user_name", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(max_length=200)
    case_id: str | None = Field(default=None, max_length=32)
    kind: str = Field(max_length=40)
    message: str = Field(sa_type=Text)
    created_at: datetime = instant()


class WebhookDelivery(SQLModel, table=True):
    """An event to post to an OPD's webhook: an outbox row, retried until delivered."""

    __tablename__ = "webhook_delivery"
    id: int | None = Field(default=None, primary_key=True)
    opd: str = Field(foreign_key="opd.id")
    url: str = Field(max_length=500)
    payload: dict[str, Any] = json_map()
    attempts: int = 0
    next_attempt_at: datetime = instant(index=True)
    delivered_at: datetime | None = instant(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)


class SweepState(SQLModel, table=True):
    """When timers were last swept: what /healthz and /metrics report of the scheduler."""

    __tablename__ = "sweep_state"
    id: int = Field(default=1, primary_key=True)
    swept_at: datetime = instant()
    fired: int = 0
    duration_seconds: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})


class IdempotencyKey(SQLModel, table=True):
    """An `Idempotency-Key` a user sent with a POST: which request it was for, and its answer.

    Inserted in a short transaction of its own before the request runs (`status` None: in
    flight), completed with the answer after. The stored body may hold an applicant's data
    in clear, as the case does: it stays in this database and is never logged.
    """

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_name", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(max_length=200)
    key: str = Field(max_length=255)
    # SHA-256 of the method, path and body of the request the key was first used for
    fingerprint: str = Field(max_length=64)
    created_at: datetime = instant(index=True)
    status: int | None = None
    body: str | None = Field(default=None, sa_type=Text)
    headers: dict[str, str] = json_map()


class CaseSecret(SQLModel, table=True):
    """A case's key for the commitments its events hold: erased with its personal data."""

    __tablename__ = "case_secret"
    case_id: str = Field(primary_key=True, max_length=32)
    secret: str = Field(max_length=64)  # 32 random bytes, hex


class PersonalDatum(SQLModel, table=True):
    """A personal value an event of a case commits to, in clear, beside the chain.

    `commitment` is what stands in the event's `data`; `name` what the value is
    (`fields.nik`, `comment`), `purpose` what it was collected for. Erasure deletes the row.
    """

    __tablename__ = "personal_datum"
    __table_args__ = (UniqueConstraint("case_id", "commitment"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(max_length=32, index=True)
    commitment: str = Field(max_length=80)
    name: str = Field(max_length=200)
    value: str = Field(sa_type=Text)  # JSON of the value
    purpose: str = Field(max_length=500)
    recorded_at: datetime = instant()


class MerkleNode(SQLModel, table=True):
    """A perfect subtree of the trail's Merkle tree (engine.domain.merkle); level 0: a leaf.

    The leaf at `idx` is the event with `seq = idx + 1`; appended by the checkpoint service,
    never changed.
    """

    __tablename__ = "merkle_node"
    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class Checkpoint(SQLModel, table=True):
    """A signed checkpoint of the trail's tree: its size, root and signed note."""

    __tablename__ = "checkpoint"
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_type=Text)
    created_at: datetime = instant()


class Cosignature(SQLModel, table=True):
    """A witness's cosignature line of a checkpoint, served with it."""

    __tablename__ = "cosignature"
    __table_args__ = (UniqueConstraint("size", "witness"),)
    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    witness: str = Field(max_length=200)
    line: str = Field(sa_type=Text)
    created_at: datetime = instant()


class CalendarEntry(SQLModel, table=True):
    """A decree in the deployment's calendar register: days off, days made working again,
    or the dates of a year's Ramadan; national, or one office's own (`opd`)."""

    __tablename__ = "calendar_entry"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # off | on | ramadan
    first: date = Field(index=True)
    last: date
    opd: str | None = Field(default=None, foreign_key="opd.id", index=True)
    reason: str = Field(max_length=500)
    cuti_bersama: bool = False
    estimated: bool = False
    created_at: datetime = instant()
    created_by: str = Field(max_length=200)


class CalendarZone(SQLModel, table=True):
    """An office's default time zone, which its SOPs' `id-working` runs in."""

    __tablename__ = "calendar_zone"
    opd: str = Field(primary_key=True, foreign_key="opd.id", max_length=64)
    timezone: str = Field(max_length=64)
    set_at: datetime = instant()
    set_by: str = Field(max_length=200)
