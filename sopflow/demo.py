"""`sopflow demo`: a simulated working week of cases on the sample SOPs, then the reports.

The simulation drives the real service layer (`open_case`, `fire_transition`,
`record_payment`, the SLA timer sweep) on a clock of its own, one simulated minute at a
time through the working hours of every SOP's calendar. Citizens take a number at the
kiosk from opening time (a crowd at the door, fewer later); counters open after the
morning assembly and close for the midday break. Each service has its own team per role,
and the heads (kasi, kabid, kadis, ...) serve the whole office. An officer takes the
oldest waiting case at the steps his role works (first come, first served), takes a
random time over it scaled by his own speed, and moves it on toward completion. About
one case in ten lacks a document and is sent back to the citizen once; a few are rejected;
licence levies are billed by the Perda's formula and paid exactly. A levy's service (PBG)
runs for weeks before the bill, so its applications start arriving LEAD_IN_WEEKS before
the week (only those services' cases and staff are busy then), and the week sees cases
billed and paid. With `planted=True` five officers misbehave, one way each: one takes
extra fees, one serves the newest file first (the broker's clients jump the queue), one
holds files, one bills the levy correctly but takes an extra payment on top, one collects
the levy without ever billing it.
"""

from __future__ import annotations

import math
import random
import shlex
import socket
import sys
import textwrap
import time as stopwatch
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import Engine, event

from engine.domain.calendar import WorkingCalendar, calendar_for
from engine.domain.durations import Duration
from engine.domain.model import SOP, CalendarSpec, Step, Transition
from engine.domain.validator import load_file, sop_files
from engine.service import anomalies, cases, reports, timers
from engine.service.context import Context
from engine.service.sops import publish_sop
from engine.service.users import Principal, add_user
from engine.store.db import make_engine
from engine.store.migrate import upgrade

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
DEFAULT_DATABASE = Path("sopflow-demo.db")
DEFAULT_SEED = 17
DEFAULT_WEEK = date(2026, 3, 2)  # a Monday; no holiday or cuti bersama that week
WORKING_DAYS = 5
SWEEP_EVERY = 10  # simulated minutes between SLA timer sweeps
INSPECTOR = "inspektur"

# citizens arriving per working day, per SOP (others: DEFAULT_VOLUME)
VOLUMES = {
    "ktp-el": 22,
    "kartu-keluarga": 14,
    "akta-kematian": 5,
    "rujukan-rsud": 8,
    "rekomendasi-bansos": 5,
    "sip-dokter": 2,
    "pbg": 2,
}
DEFAULT_VOLUME = 3
DAY_FACTOR = (1.2, 1.05, 1.0, 0.95, 0.8)  # Monday is the busiest day
# arrivals through the day: (minutes after opening, relative intensity) until the next
# mark; people queue at the door before opening, and the kiosk stops issuing numbers an
# hour before closing
ARRIVALS = ((0, 12.0), (30, 3.0), (150, 1.2), (270, 0.4), (330, 0.6), (420, 0.2))
LAST_ARRIVAL = 60
ASSEMBLY = 30  # minutes after opening before the counters open (apel pagi)
BREAKS = {4: (time(11, 30), time(13, 0))}  # Friday prayers; other days: DAILY_BREAK
DAILY_BREAK = (time(12, 0), time(13, 0))

P_MISSING = 0.10  # a required document missing at registration: sent back once
P_WITHDRAW = 0.10  # of those sent back, the citizen withdraws instead
P_REJECT = 0.04
P_DETOUR = 0.3  # an equally short other way (a field check instead of a database check)
SPREAD = 0.5  # sigma of the log of one handling time (coefficient of variation ~0.53)
SPEEDS = (0.7, 1.4)
FEE_SHARE = 0.45  # of the fee-taker's cases, the share he charges
FREE_SERVICE_CHARGE = (50_000, 100_000, 150_000)
LEVY_SURCHARGE = (250_000, 500_000)
LEVY_RATE = 42_000  # rupiah per m2: what the Perda's formula comes to for a house
LEAD_IN_WEEKS = 3  # weeks of levy applications before the week, to reach their bill in it
LEVY_DESK = 3  # officers at least at a levy's billing desk: two planted, one honest
HOLD_FACTOR = 5.0
HOLD_PILE = 2  # files the holder keeps on his desk at once
# where each abuse is planted when these SOPs are published (else: the busiest desks)
PLANT_AT = {
    "queue_jumping": ("ktp-el", "pendaftaran"),  # brokers (calo) at the KTP-el counter
    "holding_outlier": ("kartu-keluarga", "pencetakan"),  # delayed hand-over of the KK
    "fee_mismatch": ("akta-kematian", "pendaftaran"),  # a fee for a free death certificate
}
LEVY_CONDUCTS = ("levy_surcharge", "levy_unbilled")  # planted at a levy's billing desk
# the anomaly kind each planted conduct must show as (others: the conduct itself)
FOUND_AS = {"levy_surcharge": "fee_mismatch", "levy_unbilled": "fee_mismatch"}


PLANTED_AS = {  # what the summary says of each
    "fee_mismatch": "takes extra fees",
    "queue_jumping": "serves the newest file first: brokers' clients jump the queue",
    "holding_outlier": "holds files five times as long",
    "levy_surcharge": "bills the levy correctly, then takes an extra payment on top",
    "levy_unbilled": "collects the levy without ever billing it (no SKRD)",
}
TEAM_MIN = {"queue_jumping": 2, "holding_outlier": 3, "fee_mismatch": 1}

FIRST_NAMES = """
sari budi agus dewi rina joko wati andi yuni hendra lestari bambang putri rudi siti eko
ratna dedi fitri yusuf nur irfan maya teguh indah fajar wulan hadi ayu rizky dian slamet
tri bayu nina arif sri wahyu lina dimas anton retno gilang mega surya ani kurnia heru
desi imam novi taufik lia yoga intan galih citra bagus ika rahmat vina hasan tuti ilham
""".split()
CITIZENS = """
Ahmad Siti Muhammad Nurul Dewi Agus Budi Sri Rahmat Wahyuni Yohanes Maria Ketut Made
Abdul Fatimah Stefanus Marthen Yuliana Hendrik Frans Rosalina Imam Ratna
""".split()
SURNAMES = """
Santoso Wijaya Hidayat Saputra Lestari Kurniawan Nugroho Pratama Setiawan Siregar Nasution
Wenda Kogoya Rumbiak Manuputty Sinaga Harahap Simanjuntak Suryadi Rahayu Hutapea Purba
""".split()
KNOWN_FIELDS: dict[str, list[Any]] = {
    "jenis_permohonan": ["baru", "perubahan_data", "pecah", "pindah_datang", "hilang_rusak"],
    "mbr": [True, False, False, False],
    "kecamatan": ["Kota", "Utara", "Selatan", "Timur", "Barat"],
    "distrik": ["Abepura", "Heram", "Jayapura Selatan", "Jayapura Utara", "Muara Tami"],
    "lokasi_kematian": ["rumah_sakit", "rumah", "lainnya"],
    "keperluan": ["pbi_jk", "keringanan_biaya_rs", "pendidikan"],
    "poli_asal": ["penyakit_dalam", "jantung", "saraf", "bedah", "anak", "mata"],
    "fungsi_bangunan": ["hunian", "usaha", "keagamaan"],
    "nama_fasyankes": ["Klinik Pratama Sehat", "RS Bhayangkara", "Praktik Mandiri"],
    "sip_ke": [1, 2, 3],
    "jumlah_lantai": [1, 2],
}

Progress = Callable[[int, int], None]


# ---- what the simulation keeps ---------------------------------------------------------


@dataclass
class Officer:
    """A member of staff in the simulation."""

    name: str
    opd: str
    role: str
    sops: frozenset[str]  # the services whose queues he serves
    speed: float  # 1.0 = usual; 1.4 takes 40 % longer
    principal: Principal
    conduct: str | None = None  # a key of PLANTED_AS
    capacity: int = 1  # files in hand at once
    hands: list[Job] = field(default_factory=list)


@dataclass
class Citizen:
    """One case as the simulation follows it."""

    case_id: str
    sop: SOP
    step: str
    missing: str | None  # a required document not brought the first time
    reject: bool
    withdraw: bool
    returned: bool = False
    visited: set[str] = field(default_factory=set)  # steps
    received: set[str] = field(default_factory=set)  # requirement ids marked received
    fired_by: dict[str, set[str]] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # what the applicant gave
    bill: int | None = None  # a levy's bill (the SKRD), once issued
    paid: int = 0  # what has been recorded as paid toward the fee or bill


@dataclass
class Job:
    """A case waiting at a step for one transition, and what doing it takes."""

    citizen: Citizen
    transition: Transition
    role: str
    ready: datetime  # when the work can begin (the citizen is back, the centre answered)
    work: float  # working minutes for an officer of speed 1.0
    seq: int
    remaining: float = 0.0


@dataclass
class Simulation:
    """What a simulated week did, and who was planted."""

    seed: int
    week_start: date
    planted: dict[str, str]  # conduct (a key of PLANTED_AS) -> the officer planted for it
    officers: dict[str, Officer]
    sops: list[str] = field(default_factory=list)
    offices: dict[str, str] = field(default_factory=dict)  # sop -> its office
    started: datetime | None = None
    ended: datetime | None = None
    cases: int = 0
    transitions: int = 0
    payments: int = 0  # levies paid as the tariff says
    extra_payments: int = 0  # the planted officers' payments beyond the fee or bill
    bills: int = 0  # levies billed (SKRDs)
    returns: int = 0
    rejections: int = 0
    withdrawals: int = 0
    completed: int = 0
    rungs_fired: int = 0
    by_sop: dict[str, int] = field(default_factory=dict)


class SimClock:
    """The simulated clock the service layer reads."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# ---- the SOP as the simulation sees it ----------------------------------------------------


def distances(sop: SOP) -> dict[str, float]:
    """Transitions from each step to the nearest final step with outcome `completed`."""
    dist: dict[str, float] = {s.id: math.inf for s in sop.steps}
    frontier = deque(s.id for s in sop.steps if s.final and s.outcome == "completed")
    for step in frontier:
        dist[step] = 0
    while frontier:
        here = frontier.popleft()
        for t in sop.transitions:
            if t.dest == here:
                for source in t.sources:
                    if dist[source] == math.inf:
                        dist[source] = dist[here] + 1
                        frontier.append(source)
    return dist


def base_work(sop: SOP, step: Step, at: datetime) -> tuple[float, float]:
    """(latency, work) in working minutes for an officer of speed 1.0.

    A step of less than three working hours is desk work of about 30 % of its standard.
    Longer steps wait on something outside the desk (the centre's print-ready status, a
    field visit, a signing round) for up to their whole standard, then take ten minutes.
    """
    if step.paused:
        return 0.0, 3.0
    if step.sla is None:
        return 0.0, 10.0
    cal = calendar_for(sop.calendar)
    allowed = cal.working_seconds(at, cal.add(at, step.sla)) / 60
    if allowed < 180:
        return 0.0, min(max(allowed * 0.3, 4.0), 20.0)
    return allowed, 10.0


def first_step_return(sop: SOP) -> Transition | None:
    """The transition that sends a case back to the citizen from the first step."""
    for t in sop.transitions_from(sop.initial.id):
        if sop.step(t.dest).paused:
            return t
    return None


def levy_formula(fields: dict[str, Any]) -> int:
    """A levy's amount by the Perda's formula for the building (before any exemption)."""
    area = float(fields.get("luas_bangunan") or 100)
    return int(round(area * LEVY_RATE, -3))


def team_size(minutes: float) -> int:
    """Officers for a role in one service with that many desk minutes a day: a counter busy
    more than 100 minutes a day has three or four, so one on leave does not close it."""
    if minutes < 60:
        return 1
    if minutes < 100:
        return 2
    return min(4, max(3, math.ceil(minutes / 200)))


def on_duty(spec: CalendarSpec, now: datetime) -> bool:
    """True when counters are open: working time, after the assembly, outside the break."""
    if not calendar_for(spec).is_working(now):
        return False
    local = now.astimezone(ZoneInfo(spec.timezone))
    hours = spec.hours[local.weekday()]
    if hours is None:
        return False
    opened = datetime.combine(local.date(), hours[0], local.tzinfo)
    if local < opened + timedelta(minutes=ASSEMBLY):
        return False
    rest = BREAKS.get(local.weekday(), DAILY_BREAK)
    return not rest[0] <= local.time() < rest[1]


# ---- the simulation ------------------------------------------------------------------------


class _World:
    def __init__(
        self, ctx: Context, sops: list[SOP], seed: int, week_start: date, planted: bool
    ) -> None:
        self.ctx, self.sops = ctx, sops
        self.rng = random.Random(seed)
        self.sim = Simulation(
            seed, week_start, {}, {}, [s.key for s in sops], {s.key: s.opd for s in sops}
        )
        self.by_key = {sop.key: sop for sop in sops}
        self.dist = {sop.key: distances(sop) for sop in sops}
        self.queues: dict[tuple[str, str], list[Job]] = {}
        self.seq = 0
        self.kiosks: dict[str, Principal] = {}
        self.teams: dict[tuple[str, str], list[Officer]] = {}  # (sop, role) -> officers
        self._names = list(FIRST_NAMES)
        self.rng.shuffle(self._names)
        self._hire()
        if planted:
            self._plant()

    # -- staff ---------------------------------------------------------------------------

    def _load(self) -> dict[tuple[str, str], float]:
        """Expected desk minutes a day per (SOP, role), along the SOP's way to completion."""
        load: dict[tuple[str, str], float] = {}
        monday = datetime.combine(self.sim.week_start, time(9), ZoneInfo("Asia/Jakarta"))
        for sop in self.sops:
            volume = VOLUMES.get(sop.key, DEFAULT_VOLUME)
            dist = self.dist[sop.key]
            for step in sop.steps:
                if step.final:
                    continue
                for t in sop.transitions_from(step.id):
                    role = sop.role_for(t, step.id)
                    if role is None:
                        continue
                    ahead = dist[t.dest] < dist[step.id] and not step.paused
                    minutes = volume * base_work(sop, step, monday)[1] if ahead else 0.0
                    load[(sop.key, role)] = load.get((sop.key, role), 0.0) + minutes
        return load

    def _hire_one(
        self, opd: str, role: str, sops: frozenset[str], also: tuple[str, ...] = ()
    ) -> Officer:
        first = self._names.pop() if self._names else f"staf{len(self.sim.officers) + 1}"
        name = f"{first}.{role}"
        speed = round(self.rng.uniform(*SPEEDS), 2)
        who, _token = add_user(self.ctx, name, opd=opd, roles=(role, *also))
        officer = Officer(name, opd, role, sops, speed, who)
        self.sim.officers[name] = officer
        for key in sops:
            self.teams.setdefault((key, role), []).append(officer)
        return officer

    def _hire(self) -> None:
        """Each service's team per role by its load; one head per ladder role per office."""
        # a role the SOP gives to another office (Dinkes in the SIP) is that office's staff
        heads = {
            (sop.office_of(rung.to), rung.to)
            for sop in self.sops
            for step in sop.steps
            for rung in sop.ladder(step)
            if rung.to
        }
        offices: dict[str, frozenset[str]] = {}
        for sop in self.sops:
            for opd in {sop.opd, *sop.role_opds.values()}:
                offices[opd] = offices.get(opd, frozenset()) | {sop.key}
        for opd, role in sorted(heads):
            self._hire_one(opd, role, offices[opd])
        for (key, role), minutes in sorted(self._load().items()):
            opd = self.by_key[key].office_of(role)
            if (opd, role) in heads:
                continue
            sop, size, also = self.by_key[key], team_size(minutes), ()
            if sop.fee.levy and role == sop.fee.billed_by:
                # the levy desk also takes payments at its counter (besides the treasurer),
                # and has a few officers: the planted ones have an honest colleague
                size = max(size, LEVY_DESK)
                also = tuple(r for r in sop.collectors if r != role)
            for _ in range(size):
                self._hire_one(opd, role, frozenset({key}), also)
        for opd in sorted({sop.opd for sop in self.sops}):
            self.kiosks[opd], _token = add_user(self.ctx, f"anjungan.{opd}", opd=opd)

    def _desks(self) -> list[tuple[float, str, str, str]]:
        """(daily visits, sop, step, role) of the desk steps, busiest first."""
        out = []
        monday = datetime.combine(self.sim.week_start, time(9), ZoneInfo("Asia/Jakarta"))
        for sop in self.sops:
            dist = self.dist[sop.key]
            for step in sop.steps:
                if step.final or step.paused or base_work(sop, step, monday)[0]:
                    continue
                ahead = [t for t in sop.transitions_from(step.id) if dist[t.dest] < dist[step.id]]
                role = sop.role_for(ahead[0], step.id) if ahead else None
                if role is not None:
                    out.append((VOLUMES.get(sop.key, DEFAULT_VOLUME), sop.key, step.id, role))
        out.sort(key=lambda d: (-d[0], d[1], d[2]))
        return out

    def _plant(self) -> None:
        """Officers each misbehaving in one way, where peers can show it up; two of them at
        the first levy's billing desk (one surcharging, one collecting without a bill)."""
        taken: set[str] = set()
        desks = self._desks()
        for kind, (key, step_id) in PLANT_AT.items():
            hinted = [d for d in desks if (d[1], d[2]) == (key, step_id)]
            for _volume, sop_key, _step, role in hinted + desks:
                team = self.teams.get((sop_key, role), [])
                free = [o for o in team if o.name not in taken and o.conduct is None]
                if len(team) < TEAM_MIN[kind] or not free:
                    continue
                officer = self.rng.choice(free)
                taken.add(officer.name)
                officer.conduct = kind
                if kind == "holding_outlier":
                    officer.capacity = HOLD_PILE
                self.sim.planted[kind] = officer.name
                break
        levy = next((sop for sop in self.sops if sop.fee.levy and sop.fee.billed_by), None)
        if levy is not None:
            desk = self.teams.get((levy.key, levy.fee.billed_by or ""), [])
            free = [o for o in desk if o.name not in taken and o.conduct is None]
            if len(free) > len(LEVY_CONDUCTS):  # an honest colleague stays at the desk
                for conduct, officer in zip(
                    LEVY_CONDUCTS, self.rng.sample(free, len(LEVY_CONDUCTS)), strict=True
                ):
                    officer.conduct = conduct
                    self.sim.planted[conduct] = officer.name

    # -- citizens --------------------------------------------------------------------------

    def _fields(self, sop: SOP) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for spec in sop.fields:
            if spec.name == "nik" or (spec.pattern and "{16}" in spec.pattern):
                values[spec.name] = "".join(str(self.rng.randrange(10)) for _ in range(16))
            elif spec.name == "nama":
                values[spec.name] = f"{self.rng.choice(CITIZENS)} {self.rng.choice(SURNAMES)}"
            elif spec.name in KNOWN_FIELDS:
                values[spec.name] = self.rng.choice(KNOWN_FIELDS[spec.name])
            elif not spec.required:
                continue
            elif spec.type == "integer":
                values[spec.name] = self.rng.randint(1, 3)
            elif spec.type == "number":
                values[spec.name] = float(self.rng.randrange(60, 300))
            elif spec.type == "boolean":
                values[spec.name] = True
            elif spec.type == "date":
                back = timedelta(days=self.rng.randint(1, 25))
                values[spec.name] = (self.sim.week_start - back).isoformat()
            else:
                values[spec.name] = "-"
        return values

    def arrive(self, sop: SOP, now: datetime) -> None:
        """A citizen takes a number: the case is opened at the kiosk and waits at the desk."""
        back = first_step_return(sop)
        first = next(
            (t for t in sop.transitions_from(sop.initial.id) if t.requires and t is not back),
            None,
        )
        fields = self._fields(sop)
        missing = None
        if back is not None and first is not None and self.rng.random() < P_MISSING:
            # a document asked of this kind of application (`when`)
            asked = [
                r for r in first.requires if (spec := sop.requirement(r)) and spec.applies(fields)
            ]
            missing = self.rng.choice(asked or list(first.requires))
        view = cases.open_case(self.ctx, self.kiosks[sop.opd], sop.key, fields=fields)
        citizen = Citizen(
            view["id"],
            sop,
            sop.initial.id,
            missing=missing,
            reject=self.rng.random() < P_REJECT,
            withdraw=self.rng.random() < P_WITHDRAW,
            fields=fields,
        )
        self.sim.cases += 1
        self.sim.by_sop[sop.key] = self.sim.by_sop.get(sop.key, 0) + 1
        self._enter(citizen, now)

    def _choose(self, citizen: Citizen) -> Transition | None:
        """The next move: toward completion, unless sent back, rejected or withdrawn."""
        sop, here = citizen.sop, citizen.step
        dist = self.dist[sop.key]
        out = sop.transitions_from(here)
        if sop.step(here).paused:
            if citizen.withdraw and citizen.returned:
                ends = [t for t in out if sop.step(t.dest).outcome == "withdrawn"]
                if ends:
                    return ends[0]
            return min(out, key=lambda t: dist[t.dest], default=None)
        if citizen.missing and not citizen.returned and here == sop.initial.id:
            return first_step_return(sop)
        if citizen.reject and here != sop.initial.id:
            own = sop.step(here).role
            for t in out:
                if sop.step(t.dest).outcome == "rejected" and sop.role_for(t, here) == own:
                    return t
        # another way as short (a field visit instead of a database check); never one
        # through a paused step: `anomalies.repeated_return` counts every paused visit as
        # the file sent back to the citizen, so notify-and-collect after a return (KTP-el
        # `beritahu_siap_ambil`) would read as a file sent back twice
        detours = [
            t
            for t in out
            if dist[t.dest] == dist[here]
            and t.dest not in citizen.visited
            and not sop.step(t.dest).paused
        ]
        if detours and self.rng.random() < P_DETOUR:
            return self.rng.choice(detours)
        ahead = [t for t in out if dist[t.dest] < dist[here]]
        return min(ahead, key=lambda t: dist[t.dest], default=None)

    def _enter(self, citizen: Citizen, now: datetime) -> None:
        """Plan the case's next move at the step it is now in, and queue it."""
        sop = citizen.sop
        step = sop.step(citizen.step)
        citizen.visited.add(step.id)
        if step.final:
            return
        t = self._choose(citizen)
        role = None if t is None else sop.role_for(t, step.id)
        if t is None or role is None or (sop.key, role) not in self.teams:
            return
        if t.requires_payment and sop.fee.levy and citizen.bill is None:
            return  # collected without a bill: the treasurer has nothing to confirm
        latency, work = base_work(sop, step, now)
        if step.paused:
            # the citizen comes back (with the document, with the levy paid) later
            wait = self.rng.uniform(90, 480) if citizen.returned else self.rng.uniform(120, 900)
        elif latency:
            share = self.rng.uniform(0.05, 0.8)
            if self.rng.random() < 0.07:
                share = self.rng.uniform(1.0, 1.6)  # now and then the standard is missed
            wait = latency * share
        else:
            wait = 0.0
        cal = calendar_for(sop.calendar)
        ready = cal.add(now, Duration.of_seconds(round(wait * 60))) if wait else now
        work *= math.exp(self.rng.gauss(0, SPREAD))
        self.seq += 1
        self.queues.setdefault((sop.key, role), []).append(
            Job(citizen, t, role, ready, work, self.seq)
        )

    # -- officers ----------------------------------------------------------------------------

    def take(self, officer: Officer, now: datetime, duty: dict[str, bool]) -> None:
        """The officer takes the next case from his queues: the oldest one, usually."""
        while len(officer.hands) < officer.capacity:
            waiting = [
                job
                for key in officer.sops
                if duty[key]
                for job in self.queues.get((key, officer.role), ())
                if job.ready <= now
                and not any(
                    officer.name in job.citizen.fired_by.get(e, ()) for e in job.transition.not_by
                )
            ]
            if not waiting:
                return
            if officer.conduct == "queue_jumping":
                # the newest file first: the clients a broker brings in go ahead of the queue
                job = max(waiting, key=lambda j: (j.ready, j.seq))
            else:
                job = min(waiting, key=lambda j: (j.ready, j.seq))
            self.queues[(job.citizen.sop.key, officer.role)].remove(job)
            factor = HOLD_FACTOR if officer.conduct == "holding_outlier" else 1.0
            job.remaining = job.work * officer.speed * factor
            officer.hands.append(job)

    def work(self, officer: Officer, now: datetime, duty: dict[str, bool]) -> None:
        """A minute of work on every file in hand; the finished ones move on."""
        for job in list(officer.hands):
            if not duty[job.citizen.sop.key]:
                continue
            job.remaining -= 1
            if job.remaining <= 0:
                officer.hands.remove(job)
                self._finish(officer, job, now)

    def _bill(self, citizen: Citizen, who: Principal, now: datetime) -> None:
        """The levy billed by the Perda's formula (the SKRD); low-income housing is exempt."""
        sop = citizen.sop
        self.sim.bills += 1
        reference = f"SKRD/{now:%Y}/{self.sim.bills:04d}"
        if citizen.fields.get("mbr"):
            waiver = "Rumah MBR: dibebaskan dari retribusi PBG (SKB 3 Menteri 2024)"
            amount = 0
        else:
            waiver = None
            amount = levy_formula(citizen.fields)
        cases.issue_bill(
            self.ctx, who, citizen.case_id, amount, reference, sop.fee.basis or "Perda", waiver
        )
        citizen.bill = amount

    def _take_cash(self, citizen: Citizen, who: Principal, amount: int) -> None:
        """A planted officer's payment beyond what is owed, recorded at his desk."""
        cases.record_payment(self.ctx, who, citizen.case_id, amount, "cash")
        citizen.paid += amount
        self.sim.extra_payments += 1

    def _comment(self, citizen: Citizen, t: Transition) -> str | None:
        if not t.comment_required:
            return None
        sop = citizen.sop
        dest = sop.step(t.dest)
        if dest.paused and citizen.missing and not citizen.returned:
            name = next((r.name for r in sop.requirements if r.id == citizen.missing), "")
            return f"Berkas belum lengkap: {name or citizen.missing}."
        if dest.outcome == "rejected":
            return "Tidak memenuhi persyaratan standar pelayanan; alasan tertulis dilampirkan."
        if dest.outcome == "withdrawn":
            return "Pemohon mencabut permohonannya."
        return f"Diteruskan: {dest.name}."

    def _finish(self, officer: Officer, job: Job, now: datetime) -> None:
        citizen, t = job.citizen, job.transition
        sop, who = citizen.sop, officer.principal
        if officer.conduct == "fee_mismatch" and self.rng.random() < FEE_SHARE:
            amount = (
                self.rng.choice(FREE_SERVICE_CHARGE)
                if sop.fee.free
                else sop.fee.amount + self.rng.choice(LEVY_SURCHARGE)
            )
            self._take_cash(citizen, who, amount)
        billing = (
            sop.fee.levy
            and citizen.bill is None
            and sop.step(t.sources[0]).role == sop.fee.billed_by
        )
        abuse = billing and officer.conduct in LEVY_CONDUCTS  # on every levy case he bills
        if abuse and officer.conduct == "levy_unbilled":
            # the applicant pays him what the bill would come to and no SKRD is issued: the
            # treasurer has no bill to confirm, and the case waits at the payment step
            self._take_cash(citizen, who, levy_formula(citizen.fields))
        elif billing:
            self._bill(citizen, who, now)
            if abuse:  # levy_surcharge: the bill and something on top, in cash at his desk
                extra = self.rng.choice(LEVY_SURCHARGE)
                self._take_cash(citizen, who, (citizen.bill or 0) + extra)
        due = (citizen.bill or 0) if sop.fee.levy else sop.fee.amount
        if t.requires_payment and due > citizen.paid:  # what is still owed, paid exactly
            self.sim.payments += 1
            receipt = f"STS-{now:%Y%m%d}-{self.sim.payments:04d}"
            owed = due - citizen.paid
            cases.record_payment(self.ctx, who, citizen.case_id, owed, "transfer", receipt)
            citizen.paid = due
        dest = sop.step(t.dest)
        sent_back = dest.paused and citizen.missing is not None and not citizen.returned
        # documents are marked when the desk accepts the file; a file sent back marks none
        received = [
            r
            for r in t.requires
            if not sent_back
            and r not in citizen.received
            and (spec := sop.requirement(r)) is not None
            and spec.applies(citizen.fields)
        ]
        cases.fire_transition(
            self.ctx,
            who,
            citizen.case_id,
            t.name,
            comment=self._comment(citizen, t),
            received=received or None,
        )
        self.sim.transitions += 1
        citizen.received.update(received)
        citizen.fired_by.setdefault(t.name, set()).add(officer.name)
        if sent_back:
            self.sim.returns += 1
            citizen.returned = True
        if dest.outcome == "rejected":
            self.sim.rejections += 1
        elif dest.outcome == "withdrawn":
            self.sim.withdrawals += 1
        elif dest.outcome == "completed":
            self.sim.completed += 1
        citizen.step = dest.id
        self._enter(citizen, now)


# ---- time ----------------------------------------------------------------------------------


def _opening_hours(cal: WorkingCalendar, day: date) -> tuple[datetime, datetime] | None:
    hours = cal.spec.hours[day.weekday()]
    if hours is None or not cal.is_working_day(day):
        return None
    zone = ZoneInfo(cal.spec.timezone)
    end_day = day + timedelta(days=1) if hours[1] == time(0) else day
    return datetime.combine(day, hours[0], zone), datetime.combine(end_day, hours[1], zone)


def working_days(
    calendars: list[WorkingCalendar], week_start: date
) -> list[tuple[datetime, datetime]]:
    """Per day of the week, the UTC span from the first office opening to the last closing."""
    spans = []
    for offset in range(WORKING_DAYS):
        day = week_start + timedelta(days=offset)
        hours = [h for h in (_opening_hours(cal, day) for cal in calendars) if h is not None]
        if hours:
            opening = min(h[0] for h in hours).astimezone(UTC)
            spans.append((opening, max(h[1] for h in hours).astimezone(UTC)))
    return spans


def arrival_times(
    rng: random.Random, cal: WorkingCalendar, day: date, count: int
) -> list[datetime]:
    """`count` arrival instants on a working day: a crowd at opening, fewer later. Whoever
    comes during the midday break (or before Ramadan's later opening) takes a number when
    the kiosk opens again: the kiosk opens no case outside working time."""
    hours = _opening_hours(cal, day)
    if hours is None or count <= 0:
        return []
    opening, closing = hours
    last = max((closing - opening).total_seconds() / 60 - LAST_ARRIVAL, 1)
    pieces = []
    for i, (start, weight) in enumerate(ARRIVALS):
        stop = min(ARRIVALS[i + 1][0] if i + 1 < len(ARRIVALS) else last, last)
        if stop > start:
            pieces.append((start, stop, weight * (stop - start)))
    total = sum(p[2] for p in pieces)
    out = []
    for _ in range(count):
        pick, minute = rng.uniform(0, total), 0.0
        for start, stop, mass in pieces:
            if pick <= mass:
                minute = start + (stop - start) * pick / mass
                break
            pick -= mass
        # the simulation steps whole minutes: the number is taken at the next one
        out.append(cal.next_opening(opening + timedelta(minutes=math.ceil(minute))))
    return sorted(out)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: the means here are small)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# ---- the week ------------------------------------------------------------------------------


def publish_all(ctx: Context, workflows_dir: Path) -> list[SOP]:
    """Publish every SOP in the folder, each as an admin of its office."""
    out = []
    for path in sop_files([workflows_dir]):
        sop, raw = load_file(path), path.read_bytes()
        publish_sop(ctx, Principal("sopflow-demo", sop.opd, frozenset(), admin=True), raw)
        out.append(sop)
    return out


def simulate(
    ctx: Context,
    workflows_dir: Path = WORKFLOWS,
    seed: int = DEFAULT_SEED,
    week_start: date = DEFAULT_WEEK,
    planted: bool = True,
    progress: Progress | None = None,
) -> Simulation:
    """Publish the SOPs, hire the staff and run a working week of cases through them.

    The simulation runs on `ctx.engine` with a simulated clock of its own (ctx's clock is
    not read); `progress(done, total)` is called with simulated hours. Levy services' cases
    (PBG) start arriving LEAD_IN_WEEKS before the week, with only their staff at work then.
    """
    if week_start.weekday() != 0:
        raise ValueError(f"{week_start} is not a Monday")
    lead_start = week_start - timedelta(weeks=LEAD_IN_WEEKS)
    clock = SimClock(datetime.combine(lead_start - timedelta(days=3), time(9), UTC))
    ctx = Context(ctx.engine, clock)
    sops = publish_all(ctx, workflows_dir)
    if not sops:
        raise ValueError(f"no SOP files in {workflows_dir}")
    world = _World(ctx, sops, seed, week_start, planted)
    sim = world.sim
    calendars = {sop.key: calendar_for(sop.calendar) for sop in sops}
    spans = working_days(list(calendars.values()), week_start)
    if not spans:
        raise ValueError(f"the week of {week_start} has no working day")
    sim.started, sim.ended = spans[0][0], spans[-1][1]
    everyone = list(sim.officers.values())
    # (start, end, day factor, services arriving, officers at work) per simulated day
    days = [
        (start, end, DAY_FACTOR[min(i, len(DAY_FACTOR) - 1)], sops, everyone)
        for i, (start, end) in enumerate(spans)
    ]
    levies = [sop for sop in sops if sop.fee.levy]
    if levies:
        keys = {sop.key for sop in levies}
        staff = [o for o in everyone if o.sops & keys]
        lead = [
            (start, end, DAY_FACTOR[min(i, len(DAY_FACTOR) - 1)], levies, staff)
            for weeks in range(LEAD_IN_WEEKS, 0, -1)
            for i, (start, end) in enumerate(
                working_days(
                    [calendars[k] for k in sorted(keys)], week_start - timedelta(weeks=weeks)
                )
            )
        ]
        days = lead + days
    hours = [math.ceil((b - a).total_seconds() / 3600) for a, b, *_ in days]
    specs = {sop.key: sop.calendar for sop in sops}
    for index, (start, end, factor, arriving, officers) in enumerate(days):
        arrivals: list[tuple[datetime, int, SOP]] = []
        for sop in arriving:
            day = (start + timedelta(hours=12)).astimezone(ZoneInfo(sop.calendar.timezone))
            count = poisson(world.rng, VOLUMES.get(sop.key, DEFAULT_VOLUME) * factor)
            for at in arrival_times(world.rng, calendars[sop.key], day.date(), count):
                arrivals.append((at, len(arrivals), sop))
        arrivals.sort(key=lambda a: (a[0], a[1]))
        pending = deque(arrivals)
        now, minute = start, 0
        while now < end:
            clock.now = now
            duty_by_spec = {spec: on_duty(spec, now) for spec in set(specs.values())}
            duty = {key: duty_by_spec[spec] for key, spec in specs.items()}
            while pending and pending[0][0] <= now:
                world.arrive(pending.popleft()[2], now)
            world.rng.shuffle(officers)
            for officer in officers:
                world.work(officer, now, duty)
            for officer in officers:
                world.take(officer, now, duty)
            if minute % SWEEP_EVERY == 0:
                sim.rungs_fired += timers.sweep(ctx).fired
            minute += 1
            now += timedelta(minutes=1)
            if progress is not None and minute % 60 == 0 and minute // 60 < hours[index]:
                progress(sum(hours[:index]) + minute // 60, sum(hours))
        clock.now = end
        sim.rungs_fired += timers.sweep(ctx).fired
        if progress is not None:
            progress(sum(hours[: index + 1]), sum(hours))
    return sim


# ---- the reports, as plain-text tables ----------------------------------------------------


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    """Aligned plain-text columns; `right` holds the indexes of right-aligned ones."""
    right = right or set()
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f}"


def bottleneck_lines(report: dict[str, Any]) -> list[str]:
    """One SOP's bottleneck report: its steps, slowest first."""
    rows = [
        [
            s["step"],
            str(s["visits"]),
            _hours(s["median_seconds"]),
            _hours(s["p90_seconds"]),
            _hours(s["working_median_seconds"]),
            f"{s['breach_rate']:.0%}",
            str(s["open_now"]),
            str(s["overdue_now"]),
        ]
        for s in report["steps"]
    ]
    headers = ["step", "visits", "median h", "p90 h", "working median h", "breach",
               "open now", "overdue now"]  # fmt: skip
    return table(headers, rows, right=set(range(1, 8)))


def anomaly_lines(items: list[dict[str, Any]], width: int = 100) -> list[str]:
    """The anomaly report: kind, severity, officer, cases and the sentence, wrapped."""
    if not items:
        return ["(no anomaly found)"]
    rows = [[i["kind"], i["severity"], i["actor"] or "-", str(len(i["case_ids"]))] for i in items]
    lines = table(["kind", "severity", "officer", "cases"], rows, right={3})
    out = lines[:2]
    for line, item in zip(lines[2:], items, strict=True):
        out.append(line)
        out.extend(textwrap.wrap(item["detail"], width, initial_indent="    ",
                                 subsequent_indent="    "))  # fmt: skip
    return out


# ---- `sopflow demo` ------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What `run_demo` did and printed."""

    simulation: Simulation
    anomalies: list[dict[str, Any]]
    bottlenecks: dict[str, dict[str, Any]]
    database: Path
    url: str
    token: str
    seconds: float
    stopped: int = 0  # SLA timers still pending when the week ended, removed with its clocks


def stop_clocks(engine: Engine) -> int:
    """End the week's clocks: remove the SLA timers still pending, so that a server opened
    on the data later shows the week as it was instead of firing them all at its first
    sweep, months late. Returns how many were removed."""
    from sqlalchemy import delete

    from engine.store.tables import SlaTimer

    with engine.begin() as connection:
        return int(connection.execute(delete(SlaTimer)).rowcount or 0)


def sopflow_command() -> str:
    """The command that runs sopflow as this process was run, whatever is on PATH."""
    script = Path(sys.argv[0])
    if script.name == "sopflow" and script.is_file():
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m sopflow"


def free_port() -> int:
    """A TCP port nothing listens on just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_engine(url: str) -> Engine:
    """An engine for the demo database: on SQLite, commits are not synced to disk one by one
    (WAL with `synchronous=NORMAL`: a crash loses at most the last acts, never consistency),
    which makes the simulated week several times faster."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    return engine


@contextmanager
def _progress_bar(show: bool) -> Iterator[Progress | None]:
    if not show:
        yield None
        return
    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Simulating the working week")
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def run_demo(
    database: Path = DEFAULT_DATABASE,
    seed: int | None = None,
    planted: bool = True,
    workflows_dir: Path | None = None,
    week_start: date = DEFAULT_WEEK,
    echo: Callable[[str], None] = click.echo,
    progress: bool = True,
) -> DemoResult:
    """Simulate a week on a fresh SQLite file and print the reports and how to serve it."""
    began = stopwatch.perf_counter()
    seed = DEFAULT_SEED if seed is None else seed
    folder = workflows_dir or WORKFLOWS
    database = database.resolve()
    if database.exists():
        echo(f"Replacing the existing {database}")
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        path.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    engine = demo_engine(url)
    try:
        upgrade(engine)
        ctx = Context(engine)
        with _progress_bar(progress) as update:
            sim = simulate(ctx, folder, seed, week_start, planted, update)
        end = sim.ended
        assert end is not None
        ctx = Context(engine, lambda: end)
        inspector, token = add_user(ctx, INSPECTOR, inspector=True)
        found = anomalies.anomalies(ctx, inspector)["items"]
        stuck = {key: reports.bottlenecks(ctx, inspector, key) for key in sim.sops}
        stopped = stop_clocks(engine)
    finally:
        engine.dispose()
    seconds = stopwatch.perf_counter() - began
    result = DemoResult(sim, found, stuck, database, url, token, seconds, stopped)
    for line in summary_lines(result):
        echo(line)
    return result


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def summary_lines(result: DemoResult) -> list[str]:
    """Everything `sopflow demo` prints after the progress bar."""
    sim = result.simulation
    first = sim.week_start
    last = first + timedelta(days=WORKING_DAYS - 1)
    offices = {o.opd for o in sim.officers.values()}
    done = (
        f"Simulated {first:%a %d %b} - {last:%a %d %b %Y} (seed {sim.seed}): "
        f"{_count(len(sim.officers), 'officer')} in {_count(len(offices), 'office')}, "
        f"{_count(sim.cases, 'case')} opened, {_count(sim.transitions, 'transition')}, "
        f"{sim.completed} completed, {sim.returns} sent back once for a missing document, "
        f"{sim.rejections} rejected, {sim.withdrawals} withdrawn, "
        f"{_count(sim.payments, 'levy', 'levies')} paid at the tariff, "
        f"{_count(sim.rungs_fired, 'SLA warning or escalation', 'SLA warnings and escalations')}."
    )
    out = ["", *textwrap.wrap(done, 100)]
    if sim.planted:
        planted = "; ".join(f"{name} ({PLANTED_AS[kind]})" for kind, name in sim.planted.items())
        out.append(f"Planted: {planted}.")
    else:
        out.append(
            "Planted: nobody (a clean week: the same offices, staff, seed and days; the "
            "citizens are drawn afresh, so the counts differ from the planted week's)."
        )
    out += ["", "BOTTLENECKS: per step, slowest first (dwell in hours; working = office hours)"]
    for key, report in result.bottlenecks.items():
        opd = sim.offices.get(key, "")
        head = f"{key} ({opd}, {_count(sim.by_sop.get(key, 0), 'case')})"
        out += ["", head, *bottleneck_lines(report)]
    out += ["", f"ANOMALIES ({len(result.anomalies)})", *anomaly_lines(result.anomalies)]
    bearer = f'-H "Authorization: Bearer {result.token}"'
    example = next(iter(result.bottlenecks), "ktp-el")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out += [
        "",
        f"Done in {result.seconds:.0f} s. Open the API on the same data (port {port} is free "
        "now; any free one will do):",
        f"  SOPFLOW_DATABASE_URL={shlex.quote(result.url)} {sopflow_command()} serve "
        f"--port {port}",
        f"Inspector `{INSPECTOR}`, token (shown once): {result.token}",
        f"  curl -s {bearer} {base}/api/v1/reports/anomalies",
        f"  curl -s {bearer} '{base}/api/v1/reports/bottlenecks?sop={example}'",
        f"The week's clocks stopped when it ended ({_count(result.stopped, 'SLA timer')} still "
        "pending removed): the server shows the week as it was and fires none of them.",
    ]
    return out
