"""The history generator of bench/reports.py: a year of cases, step visits, payments and a
valid audit hash chain, bulk-loaded into a migrated database with COPY.

Cases are simulated one at a time, in the order they were opened, by a random walk over
their SOP's transitions; every event of a case goes into a heap keyed by its instant, and
an event leaves the heap (and gets its `seq`, its hash, and the step visit or payment it
creates gets its id) once no case opened later can have an earlier one. So `seq` follows
time, ids follow entry time and the tables' physical order is the order an application
that ran for a year would have left them in (apart from updates).

Working time comes from the SOPs' own calendars: the opening hours of every day of the
year are taken from `WorkingCalendar` once, and dwell times are drawn in working seconds
and mapped back to instants, so officers act within opening hours (apart from the few
deliberate off-hours acts) and `working_seconds` is exact. A step's `due_at` is its sla
added in working seconds (days × the calendar's mean day length): the application counts
whole working days, so due instants may differ from its own by minutes.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import queue
import random
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from engine.domain.audit import Event, canonical
from engine.domain.calendar import WorkingCalendar
from engine.domain.durations import UNIT_SECONDS
from engine.domain.model import SOP, Step, Transition
from engine.service.cases import masked_fields, payment_evidence

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
US = 1_000_000
NULL = "\\N"
BACKSLASH = "\\"

# share of the cases per SOP (PBG is the one with a fee: ~5 % of cases pay)
SOP_SHARE = {
    "ktp-el": 0.335,
    "kartu-keluarga": 0.24,
    "rekomendasi-bansos": 0.12,
    "rujukan-rsud": 0.12,
    "akta-kematian": 0.08,
    "pbg": 0.07,
    "sip-dokter": 0.035,
}
# transitions that are a normal path although they take a comment
WEIGHT_OVERRIDE = {"beritahu_siap_ambil": 0.6, "belum_terdaftar": 0.4}
OFFICERS_PER_OFFICE = 20
SLOW = {3: 8.0, 11: 5.0}  # officer index -> dwell multiplier (the files they hold)
NIGHT = {17}  # officers who act outside opening hours now and then
NAMES = (
    "Siti Rahmawati", "Budi Santoso", "Dewi Lestari", "Agus Salim", "Rina Wulandari",
    "Yohanes Wenda", "Maria Kogoya", "Ahmad Fauzi", "Nur Aini", "Hendra Gunawan",
    "Ketut Ariana", "Made Suastika", "Fransiska Yikwa", "Rudi Hartono", "Sri Wahyuni",
)  # fmt: skip
VOCAB = {
    "jenis_permohonan": ("baru", "hilang", "rusak", "pindah_datang", "perubahan_data"),
    "keperluan": ("pbi_jk", "keringanan_biaya_rs", "pendidikan", "lainnya"),
    "fungsi_bangunan": ("hunian", "usaha", "keagamaan", "sosial_budaya"),
    "kecamatan": ("Abepura", "Heram", "Muara Tami", "Jayapura Utara", "Jayapura Selatan"),
    "distrik": ("Abepura", "Heram", "Muara Tami", "Jayapura Utara", "Jayapura Selatan"),
}


def us_of(at: datetime) -> int:
    """Microseconds since the epoch."""
    return (at - EPOCH) // timedelta(microseconds=1)


_DAYS: dict[int, str] = {}


def instant_text(us: int) -> str:
    """The canonical UTC text of an instant, as `utc_text` writes it (PostgreSQL reads it)."""
    day, rest = divmod(us, 86_400_000_000)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
    seconds, micro = divmod(rest, US)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{text}{hours:02d}:{minutes:02d}:{seconds:02d}.{micro:06d}Z"


class FastCalendar:
    """A calendar's opening hours over a date range, as sorted spans in microseconds."""

    def __init__(self, calendar: WorkingCalendar, lo: date, hi: date) -> None:
        starts, ends = [], []
        day = lo
        while day <= hi:
            span = calendar._span(day)
            if span is not None:
                a, b = us_of(span[0]), us_of(span[1])
                if starts and a <= ends[-1]:  # 24x7: adjacent days are one span
                    ends[-1] = b
                else:
                    starts.append(a)
                    ends.append(b)
            day += timedelta(days=1)
        self.starts, self.ends = starts, ends
        self.cum: list[int] = []
        total = 0
        for a, b in zip(starts, ends, strict=True):
            self.cum.append(total)
            total += b - a
        self.cum_end = [c + (b - a) for c, a, b in zip(self.cum, starts, ends, strict=True)]
        days = sum(1 for _ in range(len(starts))) or 1
        self.day_us = min(total // days, 86400 * US)  # a working day, on average

    def worked(self, t: int) -> int:
        """Working microseconds from the start of the range to `t`."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.cum[i] + min(t - self.starts[i], self.ends[i] - self.starts[i])

    def instant(self, w: int) -> int:
        """The instant at which `w` working microseconds have elapsed."""
        i = min(bisect_left(self.cum_end, w), len(self.starts) - 1)
        return self.starts[i] + max(0, w - self.cum[i])

    def is_working(self, t: int) -> bool:
        """True inside opening hours."""
        i = bisect_right(self.starts, t) - 1
        return i >= 0 and t < self.ends[i]

    def closing_after(self, t: int) -> int:
        """The closing instant of the span `t` lies in (or the last one before it)."""
        return self.ends[max(0, bisect_right(self.starts, t) - 1)]


def duration_us(duration: Any, day_us: int) -> int:
    """A Duration in working microseconds (days at the calendar's mean day)."""
    total = 0
    for n, unit in duration.parts:
        total += n * day_us if unit == "d" else n * UNIT_SECONDS[unit] * US
    return total


@dataclass
class StepPlan:
    """What the walk needs of one step."""

    step: Step
    moves: list[tuple[Transition, float]]
    sla_us: int | None
    median_us: float
    roles: dict[str, str | None] = field(default_factory=dict)
    dests: dict[str, Step] = field(default_factory=dict)


@dataclass
class SopPlan:
    """One SOP made ready for the walk."""

    sop: SOP
    cal: FastCalendar
    steps: dict[str, StepPlan]
    required: list[str]
    optional: list[str]
    service_us: int | None


@dataclass
class Office:
    """An OPD's officers: names, roles, who is slow, who works at night."""

    opd: str
    names: list[str]
    by_role: dict[str, list[int]]
    factor: list[float]
    night: list[float]
    everyone: list[int] = field(default_factory=list)


def officer_roles(roles: Sequence[str]) -> list[list[str]]:
    """Roles of the officers of an office: every role held by at least three of them."""
    out = []
    r = len(roles)
    for j in range(OFFICERS_PER_OFFICE):
        mine = {roles[j % r], roles[(j * 7 + 3) % r]}
        out.append(sorted(mine))
    return out


def make_office(opd: str, roles: Sequence[str]) -> tuple[Office, list[tuple[str, list[str]]]]:
    """The office's officers and (name, roles) for creating them as users."""
    held = officer_roles(roles)
    names = [f"{opd}.petugas{j + 1:02d}" for j in range(OFFICERS_PER_OFFICE)]
    by_role: dict[str, list[int]] = {}
    for j, rs in enumerate(held):
        for role in rs:
            by_role.setdefault(role, []).append(j)
    office = Office(
        opd,
        names,
        by_role,
        [SLOW.get(j, 1.0) for j in range(OFFICERS_PER_OFFICE)],
        [0.15 if j in NIGHT else 0.004 for j in range(OFFICERS_PER_OFFICE)],
        list(range(OFFICERS_PER_OFFICE)),
    )
    return office, list(zip(names, held, strict=True))


def _weight(sop: SOP, t: Transition, src: Step) -> float:
    if t.name in WEIGHT_OVERRIDE:
        return WEIGHT_OVERRIDE[t.name]
    dest = sop.step(t.dest)
    if dest.final:
        return {"completed": 1.0, "rejected": 0.03, "withdrawn": 0.1}[dest.outcome or "completed"]
    if src.paused:
        return 1.0
    if t.comment_required:
        return 0.05  # sent back to the citizen, or to an earlier step
    return 1.0


def plan_sop(sop: SOP, cal: FastCalendar) -> SopPlan:
    """The walk's view of an SOP."""
    steps = {}
    for step in sop.steps:
        if step.final:
            steps[step.id] = StepPlan(step, [], None, 0.0)
            continue
        moves = [(t, _weight(sop, t, step)) for t in sop.transitions_from(step.id)]
        sla = None if step.sla is None or step.paused else duration_us(step.sla, cal.day_us)
        if step.paused:
            median = 2.0 * cal.day_us  # the citizen comes back after two working days
        elif sla is not None:
            median = 0.45 * sla
        else:
            median = 3600.0 * US
        steps[step.id] = StepPlan(
            step,
            moves,
            sla,
            median,
            {t.name: sop.role_for(t, step.id) for t, _w in moves},
            {t.name: sop.step(t.dest) for t, _w in moves},
        )
    return SopPlan(
        sop,
        cal,
        steps,
        [r.id for r in sop.requirements if not r.optional],
        [r.id for r in sop.requirements if r.optional],
        None if sop.service_time is None else duration_us(sop.service_time, cal.day_us),
    )


# ---- COPY text -----------------------------------------------------------------------------


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _js(value: Any) -> str:
    return _esc(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _t(us: int | None) -> str:
    return NULL if us is None else instant_text(us)


def _s(value: str | None) -> str:
    return NULL if value is None else value


_JSTR: dict[str | None, str] = {None: "null"}


def _jstr(value: str | None) -> str:
    """A string as canonical JSON text, remembered (the same few names recur)."""
    found = _JSTR.get(value)
    if found is None:
        found = json.dumps(value, ensure_ascii=False)
        if len(_JSTR) < 100_000:
            _JSTR[value] = found
    return found


def canonical_text(
    seq: int, at_text: str, kind: str, opd: str | None, sop: str | None, case_id: str | None,
    actor: str | None, from_step: str | None, to_step: str | None, data_json: str,
) -> str:  # fmt: skip
    """`engine.domain.audit.canonical` written out (keys sorted), checked against it."""
    return (
        '{"actor":' + _jstr(actor)
        + ',"at":"' + at_text
        + '","case_id":' + _jstr(case_id)
        + ',"data":' + data_json
        + ',"from_step":' + _jstr(from_step)
        + ',"opd":' + _jstr(opd)
        + ',"seq":' + str(seq)
        + ',"sop":' + _jstr(sop)
        + ',"to_step":' + _jstr(to_step)
        + ',"type":' + _jstr(kind)
        + "}"
    )  # fmt: skip


CASE_COLUMNS = (
    "pk, id, tracking_code, sop, sop_version, opd, status, outcome, step, step_role, "
    "step_entered_at, step_due_at, service_due_at, escalation_level, flags, flagged, received, "
    "fired_by, extra_roles, paid_total, fields, version, created_at, created_by, closed_at, "
    "paused_since, service_due_frozen, paused_seconds"
)
VISIT_COLUMNS = (
    "id, case_pk, sop, step, role, paused, entered_at, entered_by, due_at, left_at, left_by, "
    "left_via, paused_seconds, dwell_seconds, working_seconds"
)
PAYMENT_COLUMNS = (
    "id, case_pk, amount, expected, method, receipt, fee_mismatch, recorded_at, recorded_by"
)
AUDIT_COLUMNS = "seq, at, type, opd, sop, case_id, actor, from_step, to_step, data, prev_hash, hash"
TABLES = (
    ("sop_case", CASE_COLUMNS),
    ("step_visit", VISIT_COLUMNS),
    ("payment", PAYMENT_COLUMNS),
    ("audit_event", AUDIT_COLUMNS),
)


class Loader:
    """COPY in batches on a thread of its own, so PostgreSQL ingests while Python computes."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute("SET synchronous_commit = off")
        self.conn.commit()
        self.queue: queue.Queue[tuple[str, ...] | None] = queue.Queue(maxsize=3)
        self.error: BaseException | None = None
        self.copy_seconds = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                batch = self.queue.get()
                if batch is None:
                    return
                started = time.perf_counter()
                with self.conn.cursor() as cur:
                    for (table, columns), text in zip(TABLES, batch, strict=True):
                        if text:
                            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                                copy.write(text)
                self.conn.commit()
                self.copy_seconds += time.perf_counter() - started
        except BaseException as e:  # noqa: BLE001 - handed to the generating thread
            self.error = e
            while self.queue.get() is not None:  # drain, so the producer never blocks
                pass

    def put(self, batch: tuple[str, ...]) -> None:
        if self.error is not None:
            raise RuntimeError("COPY failed") from self.error
        self.queue.put(batch)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.conn.close()
        if self.error is not None:
            raise RuntimeError("COPY failed") from self.error


# ---- the simulation ------------------------------------------------------------------------


@dataclass
class Stats:
    """What was generated."""

    cases: int = 0
    open_cases: int = 0
    visits: int = 0
    open_visits: int = 0
    paused_visits: int = 0
    payments: int = 0
    mismatches: int = 0
    events: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    checked_canonical: int = 0


class History:
    """Generates and loads the history; see the module's docstring."""

    def __init__(
        self,
        url: str,
        plans: dict[str, SopPlan],
        offices: dict[str, Office],
        start: datetime,
        end: datetime,
        head: tuple[int, str],
        events_per_case: float,
        seed: int = 20261101,
        batch: int = 100_000,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.url, self.plans, self.offices = url, plans, offices
        self.start_us, self.end_us = us_of(start), us_of(end)
        self.seq, self.prev = head
        self.target = events_per_case
        self.rng = random.Random(seed)
        self.batch = batch
        self.progress = progress
        self.stats = Stats()
        self.heap: list[tuple[int, int, tuple[Any, ...]]] = []
        self.tiebreak = 0
        self.visit_id = 0
        self.payment_id = 0
        self.lines: list[list[str]] = [[], [], [], []]
        self.planned_events = 0
        self.copy_seconds = 0.0
        self.last_created = 0

    # -- officers and times --

    def officer(self, office: Office, role: str | None, avoid: set[str]) -> int:
        pool = office.by_role.get(role or "") or office.everyone
        if not avoid:
            return pool[int(self.rng.random() * len(pool))]
        choices = [j for j in pool if office.names[j] not in avoid] or [
            j for j in range(len(office.names)) if office.names[j] not in avoid
        ]
        return self.rng.choice(choices)

    def act_at(self, plan: SopPlan, office: Office, j: int, after: int, work: float) -> int:
        """When an officer acts, `work` working µs after `after`; now and then off hours."""
        cal = plan.cal
        at = cal.instant(cal.worked(after) + int(work))
        if at <= after:
            at = after + 1_000_000
        if self.rng.random() < office.night[j]:
            # after closing time: evening overtime, or the small hours
            at = cal.closing_after(at) + int(self.rng.uniform(0.3, 5.0) * 3600 * US)
        return at + self.rng.randrange(US)

    # -- one case --

    def push(self, at: int, payload: tuple[Any, ...]) -> None:
        if at >= self.end_us:
            return
        self.tiebreak += 1
        heapq.heappush(self.heap, (at, self.tiebreak, payload))
        self.planned_events += 1

    def simulate(self, pk: int, plan: SopPlan, created: int) -> None:
        rng, sop, office = self.rng, plan.sop, self.offices[plan.sop.opd]
        cal = plan.cal
        case_id = f"{rng.getrandbits(96):024x}"
        bits = rng.getrandbits(60)
        code = "".join(CROCKFORD[(bits >> (5 * k)) & 31] for k in range(12))
        code = f"{code[:4]}-{code[4:8]}-{code[8:]}"
        fields = self.fields(sop)
        received = list(plan.required)
        first = sop.initial
        creator = self.officer(office, first.role, set())
        ref = (sop.opd, sop.key, case_id)
        created_data: dict[str, Any] = {
            "sop_version": sop.version,
            "fields": masked_fields(sop, fields),
            "received": received,
        }
        if not cal.is_working(created):
            created_data["off_hours"] = True
        service_due = (
            None if plan.service_us is None else cal.instant(cal.worked(created) + plan.service_us)
        )
        fired_by: dict[str, list[str]] = {}
        version = 1
        paid = 0
        flags: list[str] = []
        paused_total = 0.0
        step = first
        entered, entered_by = created, office.names[creator]
        pending: tuple[Any, ...] = ("case.created", created_data, None, first.id, creator)
        status, outcome, closed_at = "open", None, None
        due = None
        hops = 0
        deficit_budget = self.target * pk - self.planned_events  # events still owed
        while True:
            sp = plan.steps[step.id]
            due = None if sp.sla_us is None else cal.instant(cal.worked(entered) + sp.sla_us)
            moves = sp.moves
            if hops > 24:  # a loop that went on too long: take the first forward move
                moves = [m for m in moves if not m[0].comment_required][:1] or moves[:1]
            t = _choose(rng, moves)
            role = sp.roles[t.name]
            avoid = {n for earlier in t.not_by for n in fired_by.get(earlier, [])}
            j = self.officer(office, role, avoid)
            work = rng.lognormvariate(0.0, 0.9) * sp.median_us
            if not step.paused:
                work *= office.factor[j]  # the citizen's time is nobody's fault
            left = self.act_at(plan, office, j, entered, work)
            visit = [
                None, pk, sop.key, step.id, step.role, step.paused, entered, entered_by, due,
                None, None, None, 0.0, None, None,
            ]  # fmt: skip
            self.push(entered, (pending, ref, visit, None))
            if left >= self.end_us:
                break  # still there when the year ends: an open visit
            worked = (cal.worked(left) - cal.worked(entered)) / US
            visit[9], visit[10], visit[11] = left, office.names[j], t.name
            visit[13], visit[14] = (left - entered) / US, worked
            if step.paused:
                visit[12] = worked
                paused_total += worked
            # extras inside the visit: documents, a payment, a refused attempt
            if deficit_budget > 0 and plan.optional and rng.random() < 0.7:
                doc = rng.choice(plan.optional)
                if doc not in received:
                    received.append(doc)
                    at = entered + int((left - entered) * rng.random())
                    data: dict[str, Any] = {"received": [doc]}
                    if not cal.is_working(at):
                        data["off_hours"] = True
                    self.push(at, (("case.received", data, step.id, None, j), ref, None, None))
                    version += 1
                    deficit_budget -= 1
            if t.requires_payment:
                paid += self.payment(pk, plan, office, ref, step, entered, left, flags)
                version += 1
            elif sop.fee.free and rng.random() < 0.0004 and not step.paused:
                # a payment on a service that is free by law: an illegal charge, recorded
                paid += self.payment(pk, plan, office, ref, step, entered, left, flags)
                version += 1
            if t.not_by and rng.random() < 0.004:
                earlier = [n for e in t.not_by for n in fired_by.get(e, [])]
                if earlier:
                    who = earlier[0]
                    at = entered + int((left - entered) * rng.random())
                    data = {
                        "status": 422,
                        "reason": f"`{t.name}` is refused: fired earlier by the same person",
                        "transition": t.name,
                        "guards": ["not_by"],
                    }
                    self.push(
                        at,
                        (("case.transition_refused", data, step.id, None, who), ref, None, None),
                    )
            fired_by[t.name] = sorted({*fired_by.get(t.name, []), office.names[j]})
            version += 1
            data = {"transition": t.name}
            if t.comment_required:
                data["comment"] = "berkas belum lengkap" if t.dest != step.id else "lihat catatan"
            if not cal.is_working(left):
                data["off_hours"] = True
            dest = sp.dests[t.name]
            hops += 1
            if dest.final:
                transitioned = ("case.transitioned", data, step.id, dest.id, j)
                self.push(left, (transitioned, ref, None, None))
                closed = ("case.closed", {"outcome": dest.outcome}, dest.id, None, j)
                self.push(left, (closed, ref, None, None))
                status, outcome, closed_at = "closed", dest.outcome, left
                step, entered, due = dest, left, None
                break
            pending = ("case.transitioned", data, step.id, dest.id, j)
            step, entered, entered_by = dest, left, office.names[j]
        self.case_row(
            pk, plan, case_id, code, status, outcome, step, entered, due, service_due,
            flags, received, fired_by, paid, fields, version, created, office.names[creator],
            closed_at, paused_total,
        )  # fmt: skip

    def payment(
        self, pk: int, plan: SopPlan, office: Office, ref: tuple[str, str, str], step: Step,
        entered: int, left: int, flags: list[str],
    ) -> int:  # fmt: skip
        rng = self.rng
        expected = plan.sop.fee.amount
        amount = expected
        if expected == 0:
            amount = rng.choice((25_000, 50_000, 100_000, 150_000))
        elif rng.random() < 0.02:
            amount = expected + rng.choice((50_000, 100_000, 250_000))
        mismatch = amount != expected
        j = self.officer(office, "bendahara" if expected else step.role, set())
        at = entered + int((left - entered) * rng.uniform(0.2, 0.9))
        method = rng.choice(("cash", "transfer", "qris"))
        receipt = f"STS-{rng.randrange(10**8):08d}" if method != "cash" else None
        data = payment_evidence(amount, expected, method, receipt)
        if not plan.cal.is_working(at):
            data["off_hours"] = True
        row = [None, pk, amount, expected, method, receipt, mismatch, at, office.names[j]]
        self.push(at, (("case.payment_recorded", data, step.id, None, j), ref, None, row))
        if mismatch and "fee_mismatch" not in flags:
            flags.append("fee_mismatch")
        return amount

    def fields(self, sop: SOP) -> dict[str, Any]:
        rng = self.rng
        out: dict[str, Any] = {}
        for spec in sop.fields:
            if not spec.required and rng.random() < 0.5:
                continue
            if spec.name.startswith("nik"):
                out[spec.name] = f"3201{rng.randrange(10**12):012d}"
            elif spec.type == "integer":
                out[spec.name] = rng.randint(1, 4)
            elif spec.type == "number":
                out[spec.name] = round(rng.uniform(36, 400), 1)
            elif spec.type == "boolean":
                out[spec.name] = rng.random() < 0.5
            elif spec.type == "date":
                out[spec.name] = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"
            elif spec.name in VOCAB:
                out[spec.name] = rng.choice(VOCAB[spec.name])
            elif spec.pattern:
                continue  # a patterned text we do not know how to fill: leave it out
            else:
                out[spec.name] = rng.choice(NAMES)
        return out

    def case_row(
        self, pk: int, plan: SopPlan, case_id: str, code: str, status: str,
        outcome: str | None, step: Step, entered: int, due: int | None, service_due: int | None,
        flags: list[str], received: list[str], fired_by: dict[str, list[str]], paid: int,
        fields: dict[str, Any], version: int, created: int, creator: str,
        closed_at: int | None, paused_total: float,
    ) -> None:  # fmt: skip
        sop = plan.sop
        paused_since = frozen = None
        if status == "open" and step.paused:
            paused_since, frozen, service_due = entered, service_due, None
        elif status == "closed":
            due = None
        self.lines[0].append(
            "\t".join(
                (
                    str(pk),
                    case_id,
                    code,
                    sop.key,
                    str(sop.version),
                    sop.opd,
                    status,
                    _s(outcome),
                    step.id,
                    _s(step.role),
                    _t(entered),
                    _t(due),
                    _t(service_due),
                    "0",
                    _js(flags),
                    "t" if flags else "f",
                    _js(received),
                    _js(fired_by),
                    "[]",
                    str(paid),
                    _js(fields),
                    str(version),
                    _t(created),
                    creator,
                    _t(closed_at),
                    _t(paused_since),
                    _t(frozen),
                    repr(paused_total),
                )
            )  # fmt: skip
            + "\n"
        )
        self.stats.cases += 1
        self.stats.open_cases += status == "open"

    # -- emitting, in time order --

    def emit(self, item: tuple[int, int, tuple[Any, ...]]) -> None:
        at, _tb, (event, ref, visit, payment) = item
        kind, data, from_step, to_step, j = event
        opd, sop, case_id = ref
        office = self.offices[opd]
        actor = j if isinstance(j, str) else office.names[j]
        self.seq += 1
        seq = self.seq
        at_text = instant_text(at)
        data_json = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        body = canonical_text(seq, at_text, kind, opd, sop, case_id, actor, from_step, to_step,
                              data_json)  # fmt: skip
        if seq % 997 == 0:  # the written-out form must be the engine's, byte for byte
            engine_form = canonical(
                seq,
                Event(kind, EPOCH + timedelta(microseconds=at), opd, sop, case_id, actor,
                      from_step, to_step, data),
            )  # fmt: skip
            if engine_form != body.encode():
                raise AssertionError(f"canonical form differs at seq {seq}:\n{engine_form!r}")
            self.stats.checked_canonical += 1
        digest = hashlib.sha256((self.prev + body).encode()).hexdigest()
        self.lines[3].append(
            f"{seq}\t{at_text}\t{kind}\t{opd}\t{sop}\t{case_id}\t{actor}\t{_s(from_step)}\t"
            f"{_s(to_step)}\t{_esc(data_json) if BACKSLASH in data_json else data_json}\t"
            f"{self.prev}\t{digest}\n"
        )
        self.prev = digest
        st = self.stats
        st.events += 1
        st.by_type[kind] = st.by_type.get(kind, 0) + 1
        if visit is not None:
            self.visit_id += 1
            v = visit
            self.lines[1].append(
                "\t".join(
                    (
                        str(self.visit_id),
                        str(v[1]),
                        v[2],
                        v[3],
                        _s(v[4]),
                        "t" if v[5] else "f",
                        _t(v[6]),
                        v[7],
                        _t(v[8]),
                        _t(v[9]),
                        _s(v[10]),
                        _s(v[11]),
                        repr(v[12]),
                        NULL if v[13] is None else repr(v[13]),
                        NULL if v[14] is None else repr(v[14]),
                    )
                )  # fmt: skip
                + "\n"
            )
            st.visits += 1
            st.open_visits += v[9] is None
            st.paused_visits += bool(v[5])
        if payment is not None:
            self.payment_id += 1
            p = payment
            self.lines[2].append(
                f"{self.payment_id}\t{p[1]}\t{p[2]}\t{p[3]}\t{p[4]}\t{_s(p[5])}\t"
                f"{'t' if p[6] else 'f'}\t{_t(p[7])}\t{p[8]}\n"
            )
            st.payments += 1
            st.mismatches += bool(p[6])

    def flush(self, loader: Loader) -> None:
        loader.put(tuple("".join(lines) for lines in self.lines))
        self.lines = [[], [], [], []]

    def run(self, cases: int) -> Stats:
        rng = self.rng
        keys = list(self.plans)
        weights = [SOP_SHARE.get(k, 0.02) for k in keys]
        # cases are opened at counters in opening hours, evenly over the year's working time
        anchor = self.plans[keys[0]].cal
        lo_w, hi_w = anchor.worked(self.start_us), anchor.worked(self.end_us)
        opened = sorted(rng.randrange(lo_w, hi_w) for _ in range(cases))
        loader = Loader(self.url)
        started = time.perf_counter()
        last = started
        try:
            for i, w in enumerate(opened):
                key = rng.choices(keys, weights)[0]
                plan = self.plans[key]
                created = plan.cal.instant(plan.cal.worked(anchor.instant(w))) + rng.randrange(US)
                created = self.last_created = max(created, self.last_created + 1)
                heap = self.heap
                while heap and heap[0][0] < created:
                    self.emit(heapq.heappop(heap))
                self.simulate(i + 1, plan, created)
                if len(self.lines[3]) >= self.batch:
                    self.flush(loader)
                    now = time.perf_counter()
                    if now - last > 30:
                        last = now
                        self.progress(
                            f"  … {i + 1:,} cases, {self.stats.events:,} events, "
                            f"{now - started:.0f} s"
                        )
            while self.heap:
                self.emit(heapq.heappop(self.heap))
            self.flush(loader)
        finally:
            loader.close()
        self.copy_seconds = loader.copy_seconds
        return self.stats


def _choose(rng: random.Random, moves: list[tuple[Transition, float]]) -> Transition:
    total = sum(w for _t, w in moves)
    x = rng.random() * total
    for t, w in moves:
        x -= w
        if x < 0:
            return t
    return moves[-1][0]
