"""What the state machine tells its callers: refusals that name what was asked, guards read
from the case's own facts, and a cache that evicts the least recently used machine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.domain import machine as machine_module
from engine.domain.errors import GuardFailed, TransitionRefused
from engine.domain.lru import LRU
from engine.domain.machine import CaseFacts, compile_sop
from engine.domain.model import Transition
from tests.test_machine import KASI, LOKET, OPERATOR_KASI, ktp_sop


def test_every_transition_leaving_a_step_is_listed_in_file_order() -> None:
    sm = compile_sop(ktp_sop())
    assert sm.transitions_from("pendaftaran") == ["terima", "kembalikan"]
    assert sm.transitions_from("verifikasi") == ["kembalikan", "setujui", "tolak"]
    assert sm.transitions_from("no-such-step") == []


def test_a_refused_transition_names_itself_the_step_and_what_leaves_it() -> None:
    sm = compile_sop(ktp_sop())
    with pytest.raises(TransitionRefused) as refused:
        sm.fire(CaseFacts("pendaftaran"), LOKET, "rekam")
    assert (refused.value.name, refused.value.step) == ("rekam", "pendaftaran")
    assert refused.value.allowed == ["terima", "kembalikan"]
    assert "`rekam` cannot be fired from step `pendaftaran`" in str(refused.value)


def test_a_failed_guard_names_the_transition_and_the_missing_document() -> None:
    sm = compile_sop(ktp_sop())
    with pytest.raises(GuardFailed) as failed:
        sm.fire(CaseFacts("pendaftaran"), LOKET, "terima")
    assert failed.value.name == "terima"
    assert [f.message for f in failed.value.failures] == [
        "document `kk` (Fotokopi Kartu Keluarga) must be marked received first"
    ]


def test_a_document_the_sop_does_not_list_is_named_without_a_label() -> None:
    sop = ktp_sop()
    extra = Transition("terima", ("pendaftaran",), "perekaman", requires=("akta",))
    sop = replace(sop, transitions=(extra, *sop.transitions[1:]))
    failures = compile_sop(sop).check(CaseFacts("pendaftaran"), LOKET, "terima")
    assert [f.message for f in failures] == ["document `akta` must be marked received first"]


def test_check_reads_the_cases_own_facts_and_the_actor() -> None:
    sm = compile_sop(ktp_sop())
    received = CaseFacts("pendaftaran", received=frozenset({"kk"}))
    assert sm.check(received, LOKET, "terima") == []
    recorded = CaseFacts("verifikasi", fired_by={"rekam": frozenset({OPERATOR_KASI.user_id})})
    assert [f.guard for f in sm.check(recorded, OPERATOR_KASI, "setujui")] == ["not_by"]
    assert sm.check(recorded, KASI, "setujui") == []


def test_the_cache_evicts_the_least_recently_used_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_module, "_cache", LRU(3))
    sops = [ktp_sop(key=f"k{i}", digest=f"d{i}") for i in range(4)]
    first = compile_sop(sops[0])
    compile_sop(sops[1])
    compile_sop(sops[2])
    assert len(machine_module._cache) == 3  # full, nothing evicted yet
    assert compile_sop(sops[0]) is first  # used again: now the most recent
    compile_sop(sops[3])
    assert [key[0] for key in machine_module._cache] == ["k2", "k0", "k3"]
    assert compile_sop(sops[0]) is first
