"""The compiled state machine: roles, guards, firing, caching and sharing across threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from engine.domain import machine as machine_module
from engine.domain.durations import Duration
from engine.domain.errors import GuardFailed, GuardFailure, RoleRefused, TransitionRefused
from engine.domain.lru import LRU
from engine.domain.machine import Actor, CaseFacts, Fired, SopMachine, compile_sop, rupiah
from engine.domain.model import SOP, Fee, Requirement, Step, Transition


def ktp_sop(**changes: object) -> SOP:
    """The KTP-el example of the SOP format spec, plus a paid `bayar` step."""
    sop = SOP(
        key="ktp-el",
        version=1,
        opd="dispendukcapil",
        title="Penerbitan KTP Elektronik",
        fee=Fee(50_000, "Perda 1/2024"),
        requirements=(
            Requirement("kk", "Fotokopi Kartu Keluarga"),
            Requirement("pengantar_rt", "Surat Pengantar RT/RW", optional=True),
        ),
        roles={
            "loket": "Petugas Loket",
            "operator": "Operator Perekaman",
            "kasi": "Kepala Seksi Identitas Penduduk",
            "kadis": "Kepala Dinas",
            "kasir": "Bendahara Penerimaan",
        },
        steps=(
            Step(
                "pendaftaran", "Penerimaan dan pemeriksaan berkas", "loket", Duration.parse("30m")
            ),
            Step("menunggu_pemohon", "Menunggu kelengkapan berkas", clock="paused"),
            Step("perekaman", "Perekaman biometrik", "operator", Duration.parse("1h")),
            Step("verifikasi", "Verifikasi dan persetujuan", "kasi", Duration.parse("1d")),
            Step("pembayaran", "Pembayaran retribusi", "kasir", Duration.parse("1d")),
            Step("pencetakan", "Pencetakan KTP-el", "operator", Duration.parse("2d")),
            Step("selesai", "KTP-el diserahkan", final=True, outcome="completed"),
            Step("ditolak", "Permohonan ditolak", final=True, outcome="rejected"),
        ),
        transitions=(
            Transition("terima", ("pendaftaran",), "perekaman", requires=("kk",)),
            Transition(
                "kembalikan",
                ("pendaftaran", "verifikasi"),
                "menunggu_pemohon",
                comment_required=True,
            ),
            Transition("lengkapi", ("menunggu_pemohon",), "pendaftaran", role="loket"),
            Transition("rekam", ("perekaman",), "verifikasi"),
            Transition("setujui", ("verifikasi",), "pembayaran", not_by=("rekam",)),
            Transition("tolak", ("verifikasi",), "ditolak", comment_required=True),
            Transition("bayar", ("pembayaran",), "pencetakan", requires_payment=True),
            Transition("cetak", ("pencetakan",), "selesai"),
        ),
        digest="",
    )
    return replace(sop, **changes)  # type: ignore[arg-type]


LOKET = Actor("u-loket", frozenset({"loket"}))
OPERATOR = Actor("u-operator", frozenset({"operator"}))
KASI = Actor("u-kasi", frozenset({"kasi"}))
KADIS = Actor("u-kadis", frozenset({"kadis"}))
KASIR = Actor("u-kasir", frozenset({"kasir"}))
# an officer who both records and heads the section: the case for separation of duties
OPERATOR_KASI = Actor("u-both", frozenset({"operator", "kasi"}))


@pytest.fixture
def sm() -> SopMachine:
    return compile_sop(ktp_sop())


def test_transitions_from_lists_names_in_file_order(sm: SopMachine) -> None:
    assert sm.transitions_from("pendaftaran") == ["terima", "kembalikan"]
    assert sm.transitions_from("verifikasi") == ["kembalikan", "setujui", "tolak"]
    assert sm.transitions_from("selesai") == []


def test_allowed_leaves_out_what_a_guard_blocks_and_blocked_says_why(sm: SopMachine) -> None:
    # a missing comment blocks nothing: it comes with the firing
    assert sm.allowed(CaseFacts("pendaftaran"), LOKET) == ["kembalikan"]
    blocked = sm.blocked(CaseFacts("pendaftaran"), LOKET)
    assert [(b.name, b.guard) for b in blocked] == [("terima", "requires")]
    assert "must be marked received" in blocked[0].message
    ready = CaseFacts("pendaftaran", received=frozenset({"kk"}))
    assert sm.allowed(ready, LOKET) == ["terima", "kembalikan"]
    assert sm.blocked(ready, LOKET) == []


def test_allowed_is_empty_for_an_actor_without_the_role(sm: SopMachine) -> None:
    assert sm.allowed(CaseFacts("pendaftaran"), OPERATOR) == []
    assert sm.allowed(CaseFacts("verifikasi"), KADIS) == []


def test_escalated_role_may_act_on_the_case(sm: SopMachine) -> None:
    facts = CaseFacts("verifikasi", extra_roles=frozenset({"kadis"}))
    assert sm.allowed(facts, KADIS) == ["kembalikan", "setujui", "tolak"]
    assert sm.allowed(facts, KASI) == ["kembalikan", "setujui", "tolak"]
    fired = sm.fire(facts, KADIS, "setujui")
    assert fired.to_step == "pembayaran"


def test_role_refused_lists_the_step_role_and_the_escalation_roles(sm: SopMachine) -> None:
    facts = CaseFacts("verifikasi", extra_roles=frozenset({"kadis"}))
    with pytest.raises(RoleRefused) as refused:
        sm.fire(facts, LOKET, "setujui")
    assert refused.value.roles == ["kasi", "kadis"]
    assert str(refused.value) == "`setujui` may only be fired by role `kasi` or `kadis`"


def test_multi_source_transition_takes_the_role_of_the_step_it_leaves(sm: SopMachine) -> None:
    why = "berkas tidak lengkap"
    assert sm.fire(CaseFacts("pendaftaran"), LOKET, "kembalikan", why).to_step == (
        "menunggu_pemohon"
    )
    assert sm.fire(CaseFacts("verifikasi"), KASI, "kembalikan", why).to_step == ("menunggu_pemohon")
    with pytest.raises(RoleRefused) as refused:
        sm.fire(CaseFacts("pendaftaran"), KASI, "kembalikan", why)
    assert refused.value.roles == ["loket"]
    with pytest.raises(RoleRefused) as refused:
        sm.fire(CaseFacts("verifikasi"), LOKET, "kembalikan", why)
    assert refused.value.roles == ["kasi"]


def test_transition_role_applies_where_the_step_has_none(sm: SopMachine) -> None:
    assert sm.allowed(CaseFacts("menunggu_pemohon"), LOKET) == ["lengkapi"]
    assert sm.fire(CaseFacts("menunggu_pemohon"), LOKET, "lengkapi").to_step == "pendaftaran"


def test_transition_with_no_role_at_all_is_open_only_to_escalation_roles() -> None:
    sop = ktp_sop(
        transitions=(
            *ktp_sop().transitions,
            Transition("batalkan", ("menunggu_pemohon",), "ditolak"),
        )
    )
    sm = compile_sop(sop)
    assert "batalkan" not in sm.allowed(CaseFacts("menunggu_pemohon"), LOKET)
    escalated = CaseFacts("menunggu_pemohon", extra_roles=frozenset({"kasi"}))
    assert sm.fire(escalated, KASI, "batalkan").outcome == "rejected"


def test_transition_not_of_this_step_is_refused_naming_the_allowed_ones(sm: SopMachine) -> None:
    with pytest.raises(TransitionRefused) as refused:
        sm.fire(CaseFacts("pendaftaran", received=frozenset({"kk"})), LOKET, "setujui")
    assert refused.value.allowed == ["terima", "kembalikan"]
    assert "`terima`, `kembalikan`" in str(refused.value)


def test_unknown_transition_name_is_refused_as_not_of_this_step(sm: SopMachine) -> None:
    with pytest.raises(TransitionRefused) as refused:
        sm.fire(CaseFacts("verifikasi"), KASI, "import os")
    assert refused.value.allowed == ["kembalikan", "setujui", "tolak"]


def test_case_on_an_unknown_step_is_refused_with_nothing_allowed(sm: SopMachine) -> None:
    with pytest.raises(TransitionRefused) as refused:
        sm.fire(CaseFacts("hilang"), LOKET, "terima")
    assert refused.value.allowed == []
    assert sm.allowed(CaseFacts("hilang"), LOKET) == []


def test_final_step_has_no_transitions_to_fire(sm: SopMachine) -> None:
    with pytest.raises(TransitionRefused) as refused:
        sm.fire(CaseFacts("selesai"), OPERATOR, "cetak")
    assert refused.value.allowed == []


def test_terima_refused_until_kk_is_marked_received(sm: SopMachine) -> None:
    with pytest.raises(GuardFailed) as failed:
        sm.fire(CaseFacts("pendaftaran", received=frozenset({"pengantar_rt"})), LOKET, "terima")
    assert failed.value.failures == [
        GuardFailure(
            "requires", "document `kk` (Fotokopi Kartu Keluarga) must be marked received first"
        )
    ]
    received = CaseFacts("pendaftaran", received=frozenset({"kk"}))
    assert sm.fire(received, LOKET, "terima").to_step == "perekaman"


def test_tolak_refused_without_a_comment(sm: SopMachine) -> None:
    for comment in (None, "", "   \n"):
        with pytest.raises(GuardFailed) as failed:
            sm.fire(CaseFacts("verifikasi"), KASI, "tolak", comment)
        assert failed.value.failures == [
            GuardFailure("comment", "a comment is required to fire `tolak`")
        ]
    assert sm.fire(CaseFacts("verifikasi"), KASI, "tolak", "NIK tidak sesuai").to_step == "ditolak"


def test_setujui_refused_for_the_officer_who_recorded(sm: SopMachine) -> None:
    facts = CaseFacts("verifikasi", fired_by={"rekam": frozenset({"u-both"})})
    with pytest.raises(GuardFailed) as failed:
        sm.fire(facts, OPERATOR_KASI, "setujui")
    assert failed.value.failures == [
        GuardFailure(
            "not_by",
            "`setujui` must be fired by someone other than who fired `rekam` on this case",
        )
    ]
    assert sm.fire(facts, KASI, "setujui").to_step == "pembayaran"


def test_bayar_refused_until_the_fee_is_recorded(sm: SopMachine) -> None:
    with pytest.raises(GuardFailed) as failed:
        sm.fire(CaseFacts("pembayaran"), KASIR, "bayar")
    assert failed.value.failures == [
        GuardFailure("payment", "the official fee of Rp 50.000 must be recorded first")
    ]
    assert sm.fire(CaseFacts("pembayaran", paid=True), KASIR, "bayar").to_step == "pencetakan"


def test_every_failing_guard_is_reported_at_once() -> None:
    strict = Transition(
        "setujui",
        ("verifikasi",),
        "pembayaran",
        requires=("kk", "pengantar_rt"),
        comment_required=True,
        not_by=("rekam", "terima"),
        requires_payment=True,
    )
    base = ktp_sop()
    sop = ktp_sop(transitions=tuple(strict if t.name == "setujui" else t for t in base.transitions))
    facts = CaseFacts(
        "verifikasi", fired_by={"rekam": frozenset({"u-both"}), "terima": frozenset({"u-both"})}
    )
    with pytest.raises(GuardFailed) as failed:
        compile_sop(sop).fire(facts, OPERATOR_KASI, "setujui")
    assert [f.guard for f in failed.value.failures] == [
        "requires",
        "requires",
        "comment",
        "not_by",
        "not_by",
        "payment",
    ]
    assert "`pengantar_rt` (Surat Pengantar RT/RW)" in str(failed.value)
    assert "who fired `terima`" in str(failed.value)


def test_check_reports_failures_without_moving_and_nothing_when_satisfied(
    sm: SopMachine,
) -> None:
    assert [f.guard for f in sm.check(CaseFacts("verifikasi"), KASI, "tolak")] == ["comment"]
    assert sm.check(CaseFacts("verifikasi"), KASI, "tolak", "alasan") == []
    with pytest.raises(TransitionRefused):
        sm.check(CaseFacts("verifikasi"), KASI, "terima")


def test_not_a_transition_is_checked_before_role_and_role_before_guards(sm: SopMachine) -> None:
    nothing = CaseFacts("pendaftaran")  # kk missing: the guard would fail too
    with pytest.raises(TransitionRefused):
        sm.fire(nothing, OPERATOR, "rekam")
    with pytest.raises(RoleRefused):
        sm.fire(nothing, OPERATOR, "terima")
    with pytest.raises(GuardFailed):
        sm.fire(nothing, LOKET, "terima")


def test_fire_reaching_a_final_step_reports_its_outcome(sm: SopMachine) -> None:
    assert sm.fire(CaseFacts("pencetakan"), OPERATOR, "cetak") == Fired(
        "cetak", "pencetakan", "selesai", final=True, outcome="completed", paused=False
    )
    rejected = sm.fire(CaseFacts("verifikasi"), KASI, "tolak", "data palsu")
    assert (rejected.final, rejected.outcome) == (True, "rejected")


def test_fire_into_a_paused_step_says_the_clock_stops(sm: SopMachine) -> None:
    fired = sm.fire(CaseFacts("pendaftaran"), LOKET, "kembalikan", "KK belum dibawa")
    assert fired == Fired(
        "kembalikan", "pendaftaran", "menunggu_pemohon", final=False, outcome=None, paused=True
    )


def test_fire_leaves_the_facts_untouched(sm: SopMachine) -> None:
    facts = CaseFacts("perekaman")
    sm.fire(facts, OPERATOR, "rekam")
    assert facts == CaseFacts("perekaman")


def test_the_machine_itself_refuses_a_guarded_move(sm: SopMachine) -> None:
    case = machine_module._CaseModel("pendaftaran")
    attempt = machine_module._Attempt(CaseFacts("pendaftaran"), LOKET, None)
    sm.machine.add_model(case, initial="pendaftaran")
    try:
        assert sm.machine.events["terima"].trigger(case, attempt) is False
    finally:
        sm.machine.remove_model(case)
    assert case.state == "pendaftaran"
    assert [f.guard for f in attempt.failures] == ["requires"]


def test_machine_conditions_are_python_callables_never_strings(sm: SopMachine) -> None:
    conditions = [
        c.func
        for event in sm.machine.events.values()
        for transitions in event.transitions.values()
        for t in transitions
        for c in t.conditions
    ]
    assert conditions
    assert all(callable(f) and not isinstance(f, str) for f in conditions)


def test_machine_has_one_transition_per_name_and_source(sm: SopMachine) -> None:
    kembalikan = sm.machine.events["kembalikan"].transitions
    assert {src: len(ts) for src, ts in kembalikan.items()} == {"pendaftaran": 1, "verifikasi": 1}


def test_machine_has_no_auto_transitions(sm: SopMachine) -> None:
    assert sm.machine.auto_transitions is False
    assert list(sm.machine.events) == [t.name for t in ktp_sop().transitions]
    case = machine_module._CaseModel("pendaftaran")
    sm.machine.add_model(case, initial="pendaftaran")
    sm.machine.remove_model(case)
    assert not [a for a in dir(case) if a.startswith("to_")]


def test_compile_sop_returns_the_same_machine_for_the_same_version() -> None:
    sop = ktp_sop(digest="abc")
    assert compile_sop(sop) is compile_sop(sop)
    assert compile_sop(ktp_sop(digest="abc")) is compile_sop(sop)
    assert compile_sop(ktp_sop(version=2, digest="abc")) is not compile_sop(sop)
    assert compile_sop(ktp_sop(digest="def")) is not compile_sop(sop)


def test_compile_sop_without_a_digest_tells_different_contents_apart() -> None:
    first = compile_sop(ktp_sop(title="Satu"))
    second = compile_sop(ktp_sop(title="Dua"))
    assert first is not second
    assert second.sop.title == "Dua"
    assert compile_sop(ktp_sop(title="Dua")) is second


def test_compile_sop_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_module, "_cache", LRU(2))
    first = compile_sop(ktp_sop(digest="bound-1"))
    compile_sop(ktp_sop(digest="bound-2"))
    compile_sop(ktp_sop(digest="bound-3"))
    assert len(machine_module._cache) <= 2
    assert compile_sop(ktp_sop(digest="bound-1")) is not first


def test_transition_leaving_the_same_step_twice_is_refused_at_compile() -> None:
    twice = ktp_sop(
        transitions=(*ktp_sop().transitions, Transition("terima", ("pendaftaran",), "ditolak"))
    )
    with pytest.raises(ValueError, match="`terima` leaves step `pendaftaran` twice"):
        SopMachine(twice)


def test_case_model_is_detached_after_fire_and_after_refusal(sm: SopMachine) -> None:
    sm.fire(CaseFacts("perekaman"), OPERATOR, "rekam")
    assert sm.machine.models == []
    with pytest.raises(GuardFailed):
        sm.fire(CaseFacts("verifikasi"), KASI, "tolak")
    assert sm.machine.models == []
    with pytest.raises(RoleRefused):
        sm.fire(CaseFacts("verifikasi"), LOKET, "tolak")
    assert sm.machine.models == []


def test_case_model_is_detached_when_a_guard_raises(
    sm: SopMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> list[GuardFailure]:
        raise RuntimeError("boom")

    monkeypatch.setattr(sm, "_failures", broken)
    with pytest.raises(RuntimeError, match="boom"):
        sm.fire(CaseFacts("perekaman"), OPERATOR, "rekam")
    assert sm.machine.models == []


def test_concurrent_fires_on_distinct_cases_all_get_correct_results(sm: SopMachine) -> None:
    # (facts, actor, name, comment) -> expected destination, or None when a guard refuses
    plan: list[tuple[CaseFacts, Actor, str, str | None, str | None]] = [
        (CaseFacts("pendaftaran", received=frozenset({"kk"})), LOKET, "terima", None, "perekaman"),
        (CaseFacts("pendaftaran"), LOKET, "terima", None, None),
        (CaseFacts("pendaftaran"), LOKET, "kembalikan", "kurang", "menunggu_pemohon"),
        (CaseFacts("perekaman"), OPERATOR, "rekam", None, "verifikasi"),
        (CaseFacts("verifikasi"), KASI, "setujui", None, "pembayaran"),
        (CaseFacts("verifikasi"), KASI, "tolak", None, None),
        (CaseFacts("pembayaran", paid=True), KASIR, "bayar", None, "pencetakan"),
        (CaseFacts("pencetakan"), OPERATOR, "cetak", "selesai", "selesai"),
    ]
    start = threading.Barrier(8)

    def worker(index: int) -> list[bool]:
        start.wait()
        results = []
        for i in range(300):
            facts, actor, name, comment, expected = plan[(index + i) % len(plan)]
            try:
                fired = sm.fire(facts, actor, name, comment)
                results.append(fired.from_step == facts.step and fired.to_step == expected)
            except GuardFailed:
                results.append(expected is None)
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = [ok for results in pool.map(worker, range(8)) for ok in results]
    assert len(outcomes) == 8 * 300
    assert all(outcomes)
    assert sm.machine.models == []


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "Rp 0"), (500, "Rp 500"), (50_000, "Rp 50.000"), (1_234_567, "Rp 1.234.567")],
)
def test_rupiah_uses_dots_as_thousands_separators(amount: int, text: str) -> None:
    assert rupiah(amount) == text
