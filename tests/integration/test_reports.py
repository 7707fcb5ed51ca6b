"""Reports and exports from real cases: each anomaly planted is found, medians are right."""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.service import anomalies, cases, exports, queries, reports
from engine.service.context import Context
from engine.service.errors import Forbidden, Invalid, NotFound
from engine.service.queries import EventFilter
from engine.service.sops import publish_sop
from engine.service.users import Principal, add_user
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from tests.integration.conftest import TEST_SOP

MONDAY = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 08:00 WIB


class Clock:
    def __init__(self) -> None:
        self.now = MONDAY

    def __call__(self) -> datetime:
        return self.now


class Office:
    """One office running the test SOP (24x7) on a clock the test moves."""

    def __init__(self, ctx: Context, clock: Clock) -> None:
        self.ctx, self.clock = ctx, clock
        admin, _ = add_user(ctx, "admin", opd="dinas-uji", admin=True)
        publish_sop(ctx, admin, TEST_SOP.read_bytes())
        self.inspector, _ = add_user(ctx, "inspektur", inspector=True)
        self.staff: dict[str, Principal] = {}

    def officer(self, name: str, *roles: str) -> Principal:
        if name not in self.staff:
            self.staff[name], _ = add_user(self.ctx, name, opd="dinas-uji", roles=roles)
        return self.staff[name]

    def at(self, minutes: float) -> None:
        self.clock.now += timedelta(minutes=minutes)

    def open(self, by: str = "front") -> str:
        who = self.officer(by, "loket")
        fields = {"nik": "3201234567890001", "nama": "Budi"}
        return str(cases.open_case(self.ctx, who, "surat-izin", fields=fields)["id"])

    def fire(self, case: str, name: str, by: str, role: str, **kw: object) -> None:
        cases.fire_transition(self.ctx, self.officer(by, role), case, name, **kw)  # type: ignore[arg-type]

    def anomalies(self) -> list[dict[str, object]]:
        return list(anomalies.anomalies(self.ctx, self.inspector)["items"])


@pytest.fixture(params=["sqlite", "postgres"])
def office(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Office]:
    url = (
        f"sqlite:///{tmp_path / 'r.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("own_postgres_url")
    )
    engine = make_engine(url)
    upgrade(engine)
    clock = Clock()
    yield Office(Context(engine, clock), clock)
    engine.dispose()


def kinds(items: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [i for i in items if i["kind"] == kind]


def test_bottleneck_medians_agree_with_the_case_histories(office: Office) -> None:
    # dwell at pendaftaran in minutes; at pemeriksaan 10, 30 or 50
    dwell = [5, 20, 7, 40, 12, 9, 33, 2]
    for i, minutes in enumerate(dwell):
        case = office.open()
        office.at(minutes)
        office.fire(case, "terima", "front", "loket", received=["ktp"])
        office.at(10 + 20 * (i % 3))
        office.fire(case, "periksa", f"teknis{i % 2}", "teknis")
        office.at(60)
    report = reports.bottlenecks(office.ctx, office.inspector, "surat-izin")
    by_step = {s["step"]: s for s in report["steps"]}
    history: dict[str, list[float]] = defaultdict(list)
    for case in queries.list_cases(office.ctx, office.inspector, limit=500)["items"]:
        events = queries.case_history(office.ctx, office.inspector, case["id"])
        entered: dict[str, datetime] = {}
        for e in events:
            if e["to_step"]:
                entered[str(e["to_step"])] = e["at"]
            if e["type"] == "case.transitioned":
                history[str(e["from_step"])].append(
                    (e["at"] - entered[str(e["from_step"])]).total_seconds()
                )
    for step, values in history.items():
        assert by_step[step]["visits"] == len(values)
        assert by_step[step]["median_seconds"] == pytest.approx(statistics.median(values))
        # 24x7: working time is wall time
        assert by_step[step]["working_median_seconds"] == pytest.approx(statistics.median(values))
    assert by_step["pendaftaran"]["median_seconds"] == pytest.approx(10.5 * 60)
    assert by_step["pendaftaran"]["p90_seconds"] == pytest.approx(40 * 60)
    # the 30-minute time standard: 40 and 33 minutes broke it
    assert by_step["pendaftaran"]["breach_rate"] == pytest.approx(2 / 8)
    assert [s["step"] for s in report["steps"]][0] == "pemeriksaan"  # slowest first
    assert by_step["pembayaran"]["open_now"] == 8 and by_step["pembayaran"]["overdue_now"] == 8


def test_a_clean_office_shows_no_anomaly(office: Office) -> None:
    for i in range(30):
        case = office.open()
        office.at(10 + i % 4)
        office.fire(case, "terima", f"loket{i % 3}", "loket", received=["ktp"])
    assert office.anomalies() == []


def test_an_officer_who_holds_files_is_named_with_the_cases(office: Office) -> None:
    held = []
    for i in range(40):
        case = office.open()
        holder = i % 4 == 0
        office.at(60 if holder else 9 + i % 5)
        office.fire(
            case, "terima", "lambat" if holder else f"loket{i % 3}", "loket", received=["ktp"]
        )
        held += [case] if holder else []
    (item,) = kinds(office.anomalies(), "holding_outlier")
    assert item["actor"] == "lambat" and sorted(item["case_ids"]) == sorted(held)  # type: ignore[arg-type]
    assert len(item["event_seqs"]) == len(held)  # type: ignore[arg-type]
    assert "pendaftaran" in str(item["detail"])


def test_visits_without_a_working_time_are_left_out_not_fatal(office: Office) -> None:
    # visits that ended before step visits kept their working time have none
    for i in range(40):
        case = office.open()
        office.at(60 if i % 4 == 0 else 9 + i % 5)
        who = "lama" if i % 4 == 0 else f"loket{i % 3}"
        office.fire(case, "terima", who, "loket", received=["ktp"])
    with office.ctx.uow() as uow:
        uow.session.execute(
            text("UPDATE step_visit SET working_seconds = NULL WHERE left_by = 'lama'")
        )
        uow.commit()
    assert kinds(office.anomalies(), "holding_outlier") == []


def test_an_officer_whose_cases_jump_the_queue_is_named(office: Office) -> None:
    jumped = []
    for round_ in range(20):
        peer = f"loket{round_ % 3}"
        busy = office.open()  # the counter is working on this one when the next arrive
        office.at(1)
        waiting = [office.open() for _ in range(3)]  # they arrive in this order
        office.at(5)
        office.fire(busy, "terima", peer, "loket", received=["ktp"])
        if round_ % 2 == 0:  # the jumper, free, takes the newest file first
            office.fire(waiting[2], "terima", "calo", "loket", received=["ktp"])
            jumped.append(waiting[2])
            waiting = waiting[:2]
        for case in waiting:
            office.at(3)
            office.fire(case, "terima", peer, "loket", received=["ktp"])
        office.at(30)
    items = office.anomalies()
    (item,) = kinds(items, "queue_jumping")
    assert item["actor"] == "calo" and sorted(item["case_ids"]) == sorted(jumped)  # type: ignore[arg-type]
    assert kinds(items, "holding_outlier") == []


def test_a_file_in_a_colleagues_hands_is_not_overtaken(office: Office) -> None:
    # two officers work side by side at their own pace: the quick one finishes files that
    # arrived after the slow one's file, which was never waiting; nobody jumped a queue
    for _ in range(20):
        slow_case, quick_case = office.open(), office.open()
        office.at(2)
        office.fire(quick_case, "terima", "cepat", "loket", received=["ktp"])
        office.at(10)
        office.fire(slow_case, "terima", "lambat", "loket", received=["ktp"])
        office.at(30)
    assert kinds(office.anomalies(), "queue_jumping") == []


def test_files_on_a_holders_pile_are_not_overtaken_by_colleagues(office: Office) -> None:
    # every 30 minutes three files arrive: C (to `rapi`, done in 4 min), A (to `lambat`,
    # who keeps two on his desk and finishes each after an hour) and B (to `cepat`, done
    # in 5 min). One file at a time, `lambat` could only have started A when he finished
    # the one before, half an hour after B, so B would seem to jump ahead of A; but A was
    # on his pile, not in the queue.
    start = office.clock.now
    plan: list[tuple[float, int, str, str | None]] = []  # minute, order, file, who fires
    for r in range(15):
        t = 30 * r
        plan += [(t, 0, f"C{r}", None), (t, 1, f"A{r}", None), (t + 1, 2, f"B{r}", None)]
        plan += [(t + 4, 3, f"C{r}", "rapi"), (t + 6, 3, f"B{r}", "cepat")]
        plan += [(t + 60, 3, f"A{r}", "lambat")]
    files: dict[str, str] = {}
    for minute, _order, name, who in sorted(plan):
        office.clock.now = start + timedelta(minutes=minute)
        if who is None:
            files[name] = office.open()
        else:
            office.fire(files[name], "terima", who, "loket", received=["ktp"])
    items = office.anomalies()
    (held,) = kinds(items, "holding_outlier")
    assert held["actor"] == "lambat" and (held["sop"], held["step"]) == (
        "surat-izin",
        "pendaftaran",
    )
    assert kinds(items, "queue_jumping") == []
    # without knowing who holds files, the one-at-a-time estimate would accuse `cepat`
    lo, hi = reports.period(None, None)
    scope = {"lo": lo, "hi": hi, "opd": None}
    (blamed,) = anomalies.queue_jumping(office.ctx, scope)
    assert blamed["actor"] == "cepat"


def test_fee_mismatch_names_the_officer_the_cases_and_the_excess(office: Office) -> None:
    case = office.open()
    cases.record_payment(office.ctx, office.officer("kasir", "loket"), case, 150000, "cash")
    honest = office.open()
    cases.record_payment(office.ctx, office.officer("jujur", "loket"), honest, 50000, "cash")
    (item,) = kinds(office.anomalies(), "fee_mismatch")
    assert (item["actor"], item["case_ids"], item["severity"]) == ("kasir", [case], "high")
    assert "Rp 100.000 more than was lawful" in str(item["detail"])
    events = queries.case_history(office.ctx, office.inspector, case)
    assert item["event_seqs"] == [e["seq"] for e in events if e["type"] == "case.payment_recorded"]


@pytest.mark.parametrize(
    ("paid", "severity"), [(40000, "medium"), (60000, "high")], ids=["under", "over"]
)
def test_a_payment_on_either_side_of_the_fee_is_named(
    office: Office, paid: int, severity: str
) -> None:
    case = office.open()
    cases.record_payment(office.ctx, office.officer("kasir", "loket"), case, paid, "cash")
    exact = office.open()
    cases.record_payment(office.ctx, office.officer("jujur", "loket"), exact, 50000, "cash")
    (item,) = kinds(office.anomalies(), "fee_mismatch")
    assert (item["actor"], item["case_ids"], item["severity"]) == ("kasir", [case], severity)
    (event,) = [
        e
        for e in queries.case_history(office.ctx, office.inspector, case)
        if e["type"] == "case.payment_recorded"
    ]
    data = event["data"]
    assert (data["fee_mismatch"], data["excess"]) == (True, paid - 50000)  # type: ignore[index]
    assert item["event_seqs"] == [event["seq"]]
    side = "more than was lawful" if paid > 50000 else "less than was due"
    assert f"Rp {abs(paid - 50000):,} {side}".replace(",", ".") in str(item["detail"])


def test_officers_either_side_of_their_peers_at_a_step_only_the_slow_one_is_held(
    office: Office,
) -> None:
    # at pendaftaran `lambat` takes an hour, `kilat` a minute, three others 9-13 minutes
    for i in range(50):
        case = office.open()
        who = {0: "lambat", 1: "kilat"}.get(i % 5, f"loket{i % 3}")
        office.at({"lambat": 60, "kilat": 1}.get(who, 9 + i % 5))
        office.fire(case, "terima", who, "loket", received=["ktp"])
    (item,) = kinds(office.anomalies(), "holding_outlier")
    assert item["actor"] == "lambat"


@pytest.mark.parametrize("local_hour", [6, 21], ids=["before-opening", "after-closing"])
def test_acts_on_either_side_of_working_hours_are_named_and_inside_them_not(
    office: Office, local_hour: int
) -> None:
    from tests.conftest import WORKFLOWS

    admin, _ = add_user(office.ctx, "admin-dukcapil", opd="dispendukcapil", admin=True)
    publish_sop(office.ctx, admin, (WORKFLOWS / "kartu-keluarga.yaml").read_bytes())
    staff = {
        name: add_user(office.ctx, name, opd="dispendukcapil", roles=("loket",))[0]
        for name in ("malam", "jarang", "siang")
    }
    tuesday = datetime(2026, 3, 3, tzinfo=UTC) - timedelta(hours=7)  # 00:00 WIB
    office.clock.now = tuesday + timedelta(hours=local_hour)
    opened = [
        str(
            cases.open_case(office.ctx, staff["malam"], "kartu-keluarga", fields=_kk_fields())["id"]
        )
        for _ in range(3)
    ]
    for _ in range(2):  # fewer than the minimum: one late evening accuses nobody
        cases.open_case(office.ctx, staff["jarang"], "kartu-keluarga", fields=_kk_fields())
    office.clock.now = tuesday + timedelta(hours=10)
    for _ in range(3):
        cases.open_case(office.ctx, staff["siang"], "kartu-keluarga", fields=_kk_fields())
    (item,) = kinds(office.anomalies(), "off_hours_action")
    assert item["actor"] == "malam" and sorted(item["case_ids"]) == sorted(opened)  # type: ignore[arg-type]
    assert item["severity"] == "low"


def test_a_case_sent_back_twice_is_named_with_the_officer(office: Office) -> None:
    case = office.open()
    for _ in range(2):
        office.fire(case, "kembalikan", "pemeras", "loket", comment="kurang berkas")
        office.at(60)
        office.fire(case, "lengkapi", "front", "loket")
    once = office.open()
    office.fire(once, "kembalikan", "wajar", "loket", comment="KTP buram")
    (item,) = kinds(office.anomalies(), "repeated_return")
    assert (item["actor"], item["case_ids"]) == ("pemeras", [case])
    assert len(item["event_seqs"]) >= 2


def test_sent_back_once_then_ready_to_collect_is_no_repeated_return(office: Office) -> None:
    # two waits on the citizen, for two different things: not a file returned again
    from tests.conftest import WORKFLOWS

    admin, _ = add_user(office.ctx, "admin-dukcapil", opd="dispendukcapil", admin=True)
    publish_sop(office.ctx, admin, (WORKFLOWS / "ktp-el.yaml").read_bytes())
    roles = ("loket", "operator", "operator_cetak", "kasi")
    a, _ = add_user(office.ctx, "petugas-a", opd="dispendukcapil", roles=roles)
    b, _ = add_user(office.ctx, "petugas-b", opd="dispendukcapil", roles=roles)
    fields = {"nik": "3201234567890001", "nama": "Budi", "jenis_permohonan": "baru"}
    case = str(cases.open_case(office.ctx, a, "ktp-el", fields=fields)["id"])
    steps = [
        (a, "kembalikan", {"comment": "KK belum dibawa"}),
        (a, "lengkapi", {}),
        (a, "terima", {"received": ["kk"]}),
        (a, "rekam", {}),
        (a, "siap_cetak", {}),
        (b, "setujui", {}),
        (a, "cetak", {}),
        (a, "beritahu_siap_ambil", {"comment": "silakan ambil"}),
    ]
    for who, name, kw in steps:
        office.at(30)
        cases.fire_transition(office.ctx, who, case, name, **kw)  # type: ignore[arg-type]
    assert kinds(office.anomalies(), "repeated_return") == []
    # the same citizen sent back for the same thing again is
    office.at(30)
    cases.fire_transition(office.ctx, b, case, "ambil")
    again = str(cases.open_case(office.ctx, a, "ktp-el", fields=fields)["id"])
    for name, kw in [("kembalikan", {"comment": "KK buram"}), ("lengkapi", {})] * 2:
        office.at(30)
        cases.fire_transition(office.ctx, a, again, name, **kw)  # type: ignore[arg-type]
    (item,) = kinds(office.anomalies(), "repeated_return")
    assert (item["actor"], item["case_ids"]) == ("petugas-a", [again])
    history = queries.case_history(office.ctx, office.inspector, again)
    assert item["event_seqs"] == [e["seq"] for e in history if e["to_step"] == "menunggu_pemohon"]


def test_refused_separation_of_duties_is_named(office: Office) -> None:
    case = office.open()
    office.fire(case, "terima", "front", "loket", received=["ktp"])
    both = office.officer("rangkap", "teknis", "kasi")
    cases.fire_transition(office.ctx, both, case, "periksa")
    cases.record_payment(office.ctx, office.officer("front", "loket"), case, 50000, "cash")
    office.fire(case, "konfirmasi_bayar", "front", "loket")
    with pytest.raises(Invalid):
        cases.fire_transition(office.ctx, both, case, "setujui")  # approving their own check
    (item,) = kinds(office.anomalies(), "separation_of_duties")
    assert (item["actor"], item["case_ids"]) == ("rangkap", [case])
    refused = [
        e["seq"]
        for e in queries.case_history(office.ctx, office.inspector, case)
        if e["type"] == "case.transition_refused"
    ]
    assert item["event_seqs"] == refused


def test_one_hand_on_transitions_the_sop_keeps_apart_is_named(office: Office) -> None:
    # the guard refuses this today; the trail still holds cases from a version of the SOP
    # that did not keep `periksa` and `setujui` apart, and the report reads them against
    # the SOP as it stands
    admin, _ = add_user(office.ctx, "admin-2", opd="dinas-uji", admin=True)
    text = TEST_SOP.read_text()
    lax = text.replace("version: 1", "version: 2").replace(", not_by: [periksa]", "")
    assert "not_by" not in lax
    publish_sop(office.ctx, admin, lax.encode())
    both = office.officer("rangkap", "teknis", "kasi")
    case = office.open()
    office.fire(case, "terima", "front", "loket", received=["ktp"])
    cases.fire_transition(office.ctx, both, case, "periksa")
    cases.record_payment(office.ctx, office.officer("front", "loket"), case, 50000, "cash")
    office.fire(case, "konfirmasi_bayar", "front", "loket")
    cases.fire_transition(office.ctx, both, case, "setujui")
    assert kinds(office.anomalies(), "separation_of_duties") == []  # version 2 allows it
    publish_sop(office.ctx, admin, text.replace("version: 1", "version: 3").encode())
    (item,) = kinds(office.anomalies(), "separation_of_duties")
    assert (item["actor"], item["case_ids"], item["severity"]) == ("rangkap", [case], "high")
    assert "`periksa` and `setujui`" in str(item["detail"])
    fired = [
        e["seq"]
        for e in queries.case_history(office.ctx, office.inspector, case)
        if e["type"] == "case.transitioned" and e["actor"] == "rangkap"
    ]
    assert item["event_seqs"] == fired and len(fired) == 2


def test_acts_outside_working_hours_are_named(office: Office) -> None:
    # a working-hours calendar is needed: the test SOP is 24x7, so use ktp-el's id-working
    from tests.conftest import WORKFLOWS

    admin, _ = add_user(office.ctx, "admin-dukcapil", opd="dispendukcapil", admin=True)
    publish_sop(office.ctx, admin, (WORKFLOWS / "kartu-keluarga.yaml").read_bytes())
    night, _ = add_user(office.ctx, "malam", opd="dispendukcapil", roles=("loket",))
    office.clock.now = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 21:00 WIB on a Tuesday
    opened = []
    for _ in range(3):
        body = cases.open_case(office.ctx, night, "kartu-keluarga", fields=_kk_fields())
        opened.append(str(body["id"]))
    (item,) = kinds(office.anomalies(), "off_hours_action")
    assert item["actor"] == "malam" and sorted(item["case_ids"]) == sorted(opened)  # type: ignore[arg-type]


def _kk_fields() -> dict[str, object]:
    from engine.domain.validator import load_file
    from tests.conftest import WORKFLOWS

    sop = load_file(WORKFLOWS / "kartu-keluarga.yaml")
    values: dict[str, object] = {}
    for f in sop.fields:
        if f.required:
            values[f.name] = "3201234567890001" if f.name == "nik" else {
                "integer": 1, "number": 1, "boolean": True, "date": "2026-03-01",
            }.get(f.type, "x")  # fmt: skip
    values["jenis_permohonan"] = "baru"  # a value its pattern allows
    return values


def test_an_opd_admin_reads_only_their_office_reports(office: Office) -> None:
    admin, _ = add_user(office.ctx, "admin-lain", opd="dinas-lain", admin=True)
    with pytest.raises(Forbidden):
        anomalies.anomalies(office.ctx, admin, opd="dinas-uji")
    staff = office.officer("front", "loket")
    with pytest.raises(Forbidden):
        reports.sla_compliance(office.ctx, staff)


def test_an_opd_admin_receives_nothing_of_another_office_in_reports(office: Office) -> None:
    case = office.open()
    office.at(5)
    office.fire(case, "terima", "front", "loket", received=["ktp"])
    cases.record_payment(office.ctx, office.officer("kasir", "loket"), case, 40000, "cash")
    admin, _ = add_user(office.ctx, "admin-lain", opd="dinas-lain", admin=True)
    assert kinds(office.anomalies(), "fee_mismatch")  # the inspector sees dinas-uji's item
    theirs = anomalies.anomalies(office.ctx, admin)
    assert theirs["opd"] == "dinas-lain" and theirs["items"] == []
    sla = reports.sla_compliance(office.ctx, admin)
    assert sla["opd"] == "dinas-lain" and all(sla[level] == [] for level in ("opds", "officers"))
    assert "dinas-uji" not in str(theirs) + str(sla)
    with pytest.raises(Forbidden):
        reports.sla_compliance(office.ctx, admin, opd="dinas-uji")
    with pytest.raises((Forbidden, NotFound)):
        reports.bottlenecks(office.ctx, admin, "surat-izin")
    with pytest.raises(Forbidden):
        queries.audit_events(office.ctx, admin, EventFilter(opd="dinas-uji"))
    trail = queries.audit_events(office.ctx, admin, EventFilter())["items"]
    assert trail and {e["opd"] for e in trail} == {"dinas-lain"}  # its own user's creation


def test_sla_compliance_counts_on_time_visits_per_level(office: Office) -> None:
    for minutes, who in ((10, "a"), (45, "a"), (20, "b"), (25, "b")):
        case = office.open()
        office.at(minutes)
        office.fire(case, "terima", who, "loket", received=["ktp"])
    report = reports.sla_compliance(office.ctx, office.inspector)
    (opd,) = report["opds"]
    assert (opd["opd"], opd["visits"], opd["on_time"]) == ("dinas-uji", 4, 3)
    officers = {o["officer"]: o["on_time_rate"] for o in report["officers"]}
    assert officers == {"a": 0.5, "b": 1.0}


def test_the_csv_export_loads_as_an_event_log(office: Office) -> None:
    case = office.open()
    office.at(5)
    office.fire(case, "terima", "front", "loket", received=["ktp"])
    text = "".join(exports.csv_lines(office.ctx, office.inspector, EventFilter(case=case)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:4] == ["case_id", "activity", "timestamp", "resource"]
    assert [r["activity"] for r in rows] == ["open case", "receive documents", "terima"]
    assert rows[2]["role"] == "loket" and rows[2]["resource"] == "front"
    assert "3201234567890001" not in text and "Budi" not in text


@pytest.mark.filterwarnings("ignore::UserWarning")  # pm4py's advice on optional speed-ups
def test_the_xes_export_is_read_by_an_independent_process_mining_library(
    office: Office, tmp_path: Path
) -> None:
    import pm4py  # a dev extra, so CI has it; AGPL: tests only, never a runtime dependency

    opened = []
    for i in range(3):
        case = office.open()
        opened.append(case)
        office.at(5)
        office.fire(case, "terima", "front", "loket", received=["ktp"])
        if i == 0:
            office.fire(case, "periksa", "tek", "teknis")
    path = tmp_path / "trail.xes"
    path.write_text("".join(exports.xes_chunks(office.ctx, office.inspector, EventFilter())))
    log = pm4py.read_xes(str(path))
    assert sorted(set(log["case:concept:name"])) == sorted(opened)
    first = log[log["case:concept:name"] == opened[0]]
    assert list(first["concept:name"]) == ["open case", "receive documents", "terima", "periksa"]
    assert set(first["org:resource"]) == {"front", "tek"}
    assert first["time:timestamp"].is_monotonic_increasing
