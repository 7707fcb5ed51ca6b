"""Request and response shapes: they validate input and generate the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("this instant is outside the range of dates sopflow keeps") from None


# An instant in a query: it must carry its offset, and it is read as UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_utc)]
# A moment a reader names: an instant with its offset, or a plain date (a whole day in the
# office's time zone; the service layer turns it into instants)
Moment = Annotated[
    Instant | date,
    Field(
        description="an instant with its offset (`2026-03-02T08:00:00+07:00`, "
        "`2026-03-02T01:00:00Z`) or a plain date (`2026-03-02`): that whole day in the "
        "office's time zone (Asia/Jakarta for the inspectorate); `until` includes the day"
    ),
]
Slug = Field(max_length=64)


class Problem(BaseModel):
    """An RFC 9457 problem; `errors` lists each field (or YAML line and column) at fault."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` for the next one."""

    items: list[T]
    next_cursor: str | None


# ---- service -----------------------------------------------------------------------------


class Timers(BaseModel):
    status: Literal["ok", "late", "never", "unknown"]
    last_sweep_at: datetime | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "down"]
    broker: Literal["ok", "down"]
    timers: Timers
    # `estimated` names the years whose holidays or Ramadan are not yet decreed
    calendar: dict[str, Any] | None = None


# ---- SOPs --------------------------------------------------------------------------------


class SopPath(BaseModel):
    sop: str = Field(max_length=64, description="the SOP's key, like `ktp-el`")


class SopVersionPath(SopPath):
    n: int = Field(ge=1, le=2**31 - 1, description="the version number")


class SopQuery(BaseModel):
    opd: str | None = Field(None, max_length=64)


class Fee(BaseModel):
    amount: int
    basis: str | None


class SopOut(BaseModel):
    """A published SOP version with its steps, transitions, roles, requirements and fee."""

    sop: str
    version: int
    opd: str
    title: str
    description: str | None
    legal_basis: list[str]
    service_time: str | None = Field(description="as written in the SOP, e.g. `14d`")
    fee: Fee
    calendar: str | dict[str, Any] = Field(
        description="the named working calendar, or the SOP's own (time zone, holidays)"
    )
    roles: dict[str, str]
    fields: list[dict[str, Any]] = Field(description="the applicant's fields: name, type, …")
    requirements: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    transitions: list[dict[str, Any]]
    checksum: str
    published_at: datetime
    published_by: str | None


class SopList(BaseModel):
    items: list[SopOut]


# ---- cases -------------------------------------------------------------------------------


class CasePath(BaseModel):
    id: str = Field(max_length=64)


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sop: str = Field(max_length=64)
    version: StrictInt | None = Field(
        None, ge=1, le=2**31 - 1, description="default: the latest version"
    )
    fields: dict[str, Any] = Field(default_factory=dict)
    received: list[str] = Field(default_factory=list, max_length=100)


class TransitionFire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    comment: str | None = Field(None, max_length=2000)
    received: list[str] = Field(default_factory=list, max_length=100)


class DocumentsReceived(BaseModel):
    model_config = ConfigDict(extra="forbid")
    received: list[str] = Field(min_length=1, max_length=100)


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(gt=0, le=10**13, description="integer rupiah")
    method: Literal["cash", "transfer", "qris"]
    receipt: str | None = Field(None, max_length=200)
    charge: str | None = Field(
        None, max_length=64, description="the id of a declared charge this pays, if any"
    )


class BillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(ge=0, le=10**13, description="integer rupiah; 0 needs `waiver`")
    reference: str = Field(min_length=1, max_length=100, description="the SKRD's number")
    basis: str = Field(min_length=1, max_length=500, description="the regulation it applies")
    waiver: str | None = Field(
        None, max_length=500, description="with amount 0: the ground for the waiver"
    )


class BillOut(BaseModel):
    """A bill (SKRD) for a levy on a case."""

    amount: int
    reference: str
    basis: str
    waiver: str | None
    billed_at: datetime
    billed_by: str


class BillIssued(BillOut):
    """A bill just issued, with the case it bills."""

    case_id: str


class BlockedTransition(BaseModel):
    name: str
    guard: str
    message: str


class CaseQuery(BaseModel):
    sop: str | None = Field(None, max_length=64)
    step: str | None = Field(None, max_length=64)
    status: Literal["open", "closed"] | None = None
    overdue: bool = False
    flagged: bool = False
    assignee: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=100)


class CaseOut(BaseModel):
    """A case: where it stands, what is due when, and what the caller may do next."""

    id: str
    tracking_code: str
    sop: str
    sop_version: int
    opd: str
    status: Literal["open", "closed"]
    outcome: Literal["completed", "rejected", "withdrawn"] | None
    step: str
    step_name: str
    step_role: str | None = Field(description="the role that works the case at its step")
    step_entered_at: datetime
    step_due_at: datetime | None
    service_due_at: datetime | None
    deadline_estimated: bool = Field(
        False, description="a due instant lies in a year whose holidays or Ramadan are estimated"
    )
    escalation_level: int
    flags: list[str]
    received: list[str]
    requirements: list[str] = Field(
        description="the requirements asked of this application (`when` applied to its fields)"
    )
    paid_total: int = Field(description="integer rupiah paid so far")
    bill: BillOut | None
    deemed_approved_at: datetime | None
    decision_due_at: datetime | None = Field(
        description="when silence becomes deemed approval (SOPs with `deemed_approval`)"
    )
    allowed_transitions: list[str]
    blocked_transitions: list[BlockedTransition]
    version: int
    created_at: datetime
    created_by: str
    closed_at: datetime | None
    fields: dict[str, Any]


class PaymentOut(BaseModel):
    id: int
    case_id: str
    amount: int
    expected: int
    fee_mismatch: bool
    method: str
    receipt: str | None
    charge: str | None
    recorded_at: datetime
    recorded_by: str


class PaymentList(BaseModel):
    items: list[PaymentOut]


# ---- audit trail -------------------------------------------------------------------------


class EventQuery(BaseModel):
    opd: str | None = Field(None, max_length=64)
    sop: str | None = Field(None, max_length=64)
    case: str | None = Field(None, max_length=64)
    actor: str | None = Field(None, max_length=200)
    type: str | None = Field(None, max_length=40)
    since: Moment | None = None
    until: Moment | None = None
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=100)


class ExportQuery(BaseModel):
    format: Literal["xes", "csv"] = "xes"
    opd: str | None = Field(None, max_length=64)
    sop: str | None = Field(None, max_length=64)
    case: str | None = Field(None, max_length=64)
    actor: str | None = Field(None, max_length=200)
    type: str | None = Field(None, max_length=40)
    since: Moment | None = None
    until: Moment | None = None


class EventOut(BaseModel):
    seq: int
    at: datetime
    type: str
    opd: str | None
    sop: str | None
    case_id: str | None
    actor: str | None
    from_step: str | None
    to_step: str | None
    data: dict[str, Any]
    hash: str
    prev_hash: str


class EventList(BaseModel):
    items: list[EventOut]


class Verification(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    last_hash: str = Field(description="the chain's head: keep it to anchor later checks")
    reason: str | None = None
    checkpoint: dict[str, Any] | None = Field(
        None, description="the latest signed checkpoint checked against: size and root"
    )
    since: int | None = Field(
        None,
        description="with `since=checkpoint`: the size of the checkpoint verified from; the "
        "events up to it were not re-read (the full verify reads them)",
    )


class VerifyQuery(BaseModel):
    since: Literal["checkpoint"] | None = Field(
        None,
        description="`checkpoint`: check only the events appended after the latest signed "
        "checkpoint, from its stored tree",
    )


class NotificationOut(BaseModel):
    id: int
    case_id: str | None
    kind: str
    message: str
    created_at: datetime


# ---- reports ------------------------------------------------------------------------------


class StepBottleneck(BaseModel):
    step: str
    step_name: str
    visits: int
    median_seconds: float | None
    p90_seconds: float | None
    working_median_seconds: float | None
    breach_rate: float
    open_now: int
    overdue_now: int
    total_waiting_hours: float
    opd: str | None = Field(None, description="the office whose staff work the step")


class OfficerBottleneck(BaseModel):
    step: str
    officer: str | None
    opd: str | None = Field(None, description="the office of the officer who held the visits")
    visits: int
    median_seconds: float | None
    p90_seconds: float | None
    working_median_seconds: float | None
    breach_rate: float


class BottleneckReport(BaseModel):
    sop: str
    opd: str | None = Field(None, description="the office the report is scoped to (None: all)")
    since: datetime | None
    until: datetime | None
    steps: list[StepBottleneck] = Field(description="slowest first")
    officers: list[OfficerBottleneck] = Field(description="slowest first")


class Anomaly(BaseModel):
    kind: Literal[
        "fee_mismatch", "queue_jumping", "holding_outlier", "repeated_return",
        "separation_of_duties", "off_hours_action",
    ]  # fmt: skip
    severity: Literal["high", "medium", "low"]
    case_ids: list[str]
    actor: str | None
    event_seqs: list[int]
    detail: str
    sop: str | None = None  # where the finding is about one SOP
    step: str | None = None  # where it is about one step of it
    opd: str | None = None  # the office of the officer it names


class AnomalyReport(BaseModel):
    opd: str | None
    since: datetime | None
    until: datetime | None
    items: list[Anomaly]


class SlaReport(BaseModel):
    opd: str | None
    since: datetime | None
    until: datetime | None
    opds: list[dict[str, Any]]
    sops: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    officers: list[dict[str, Any]]


# ---- public ------------------------------------------------------------------------------


class TrackPath(BaseModel):
    code: str = Field(max_length=32)


class PublicSop(BaseModel):
    """A service standard (standar pelayanan) as citizens read it."""

    sop: str
    version: int
    title: str
    opd: str
    description: str | None
    legal_basis: list[str]
    requirements: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]
    service_time: str | None
    fee: dict[str, Any]
    charges: list[dict[str, Any]]
    deemed_approval: bool
    decision_time: str | None


class PublicSopList(BaseModel):
    items: list[PublicSop]


class Tracking(BaseModel):
    sop: str
    title: str
    status: Literal["open", "closed"]
    outcome: str | None
    step: str
    step_name: str
    received_at: datetime
    expected_by: datetime | None
    closed_at: datetime | None
    deemed_approved_at: datetime | None


class ErasureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="why the personal data is erased; kept in the audit trail for good, so it "
        "must not quote personal data",
    )


class ErasureOut(BaseModel):
    """What an erasure removed: the case's personal values, comments and secret."""

    case_id: str
    erased_at: datetime
    erased_by: str
    reason: str
    fields: int
    values: int


class PersonalItem(BaseModel):
    name: str
    value: Any
    personal: bool
    held_in: str
    purpose: str
    recorded_at: datetime


class PersonalData(BaseModel):
    """Everything held about a case's applicant, and what each item is used for."""

    case_id: str
    sop: str
    sop_version: int
    title: str
    opd: str
    status: Literal["open", "closed"]
    closed_at: datetime | None
    legal_basis: list[str]
    erased_at: datetime | None
    retention: str | None
    keep_until: datetime | None
    items: list[PersonalItem]
