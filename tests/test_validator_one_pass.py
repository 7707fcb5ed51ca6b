"""The validator in one pass: structure with the other problems, names suggested, no zero."""

from __future__ import annotations

import pytest

from engine.domain.errors import DefinitionError
from engine.domain.validator import load_sop
from tests.conftest import ROOT

SOP = (ROOT / "tests" / "sops" / "surat-izin.yaml").read_text()


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_sop(text, "f.yaml")
    return [p.message for p in caught.value.problems]


def test_an_unreachable_step_is_reported_with_the_other_problems() -> None:
    text = SOP.replace("usia: {type: integer}", "usia: {type: integr}")
    text = text.replace(
        "  - {id: ditolak, name: Ditolak, final: true, outcome: rejected}\n",
        "  - {id: ditolak, name: Ditolak, final: true, outcome: rejected}\n"
        "  - {id: arsip, name: Arsip, role: loket, sla: 1h}\n",
    )
    found = problems(text)
    assert any("integr" in m for m in found), found
    assert any("`arsip` cannot be reached" in m for m in found), found


def test_a_misspelt_step_is_one_problem_not_an_unreachable_step_too() -> None:
    found = problems(SOP.replace("to: pemeriksaan,", "to: pemeriksan,"))
    assert len(found) == 1 and "did you mean `pemeriksaan`" in found[0], found


def test_a_misspelt_transition_in_not_by_is_suggested() -> None:
    found = problems(SOP.replace("not_by: [periksa]", "not_by: [priksa]"))
    assert found == [
        "transition `setujui`: `not_by` names `priksa`, which is not a transition; "
        "did you mean `periksa`?"
    ], found


@pytest.mark.parametrize("zero", ["0s", "0m", "0h 0m", "0d"])
def test_a_zero_time_standard_is_refused(zero: str) -> None:
    found = problems(SOP.replace("sla: 30m}", f"sla: {zero}}}", 1))
    assert len(found) == 1 and "is zero" in found[0], found
