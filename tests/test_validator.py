"""The SOP validator: every rule, at the right line and column, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.domain.errors import DefinitionError
from engine.domain.validator import load_file, load_sop
from engine.domain.yamlsrc import MAX_BYTES
from sopflow.cli import main
from tests.conftest import BROKEN, WORKFLOWS

BROKEN_FILES = sorted(BROKEN.glob("*.yaml"))
SAMPLES = sorted(WORKFLOWS.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\*|\d+:\d+): (.+)$", re.M)


def problems_of(text: str | bytes) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_sop(text, "f.yaml")
    return [p.render("f.yaml") for p in caught.value.problems]


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.stem)
def test_broken_sop_is_reported_at_the_right_line_and_column(path: Path) -> None:
    where, fragment = EXPECT.search(path.read_text()).groups()  # type: ignore[union-attr]
    with pytest.raises(DefinitionError) as caught:
        load_file(path)
    found = [(f"{p.line}:{p.column}", p.message) for p in caught.value.problems]
    assert any((where == "*" or loc == where) and fragment in message for loc, message in found), (
        f"expected {where}: {fragment!r}; got {found}"
    )
    # one mistake, one message (a second at most where the mistake really has two effects)
    assert len(found) <= 2, found


def test_there_is_a_broken_file_for_every_rule_in_the_spec() -> None:
    names = {p.stem for p in BROKEN_FILES}
    for rule in (
        "unknown_key", "wrong_type", "bad_slug", "duplicate_step_id", "unknown_target_step",
        "unknown_role", "unknown_requirement", "unknown_not_by", "unknown_escalation_role",
        "bad_duration", "ladder_out_of_order", "requires_payment_on_free_service",
        "first_step_final", "no_final_step", "unreachable_step",
        "final_step_unreachable_from_step", "transition_out_of_final_step",
        "sla_step_without_role", "object_tag_refused", "unknown_fee_collector_role",
    ):  # fmt: skip
        assert rule in names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_sop_is_valid(path: Path) -> None:
    sop = load_file(path)
    assert sop.key == path.stem
    assert len(sop.digest) == 64


def test_there_are_at_least_six_samples_from_three_offices() -> None:
    sops = [load_file(p) for p in SAMPLES]
    assert len(sops) >= 6
    assert len({s.opd for s in sops}) >= 3
    by_key = {s.key: s for s in sops}
    # a levy billed per case, a lawful charge beside a free service, a step of another
    # office, requirements by application
    assert by_key["pbg"].fee.levy and by_key["pbg"].fee.billed_by == "petugas_retribusi"
    assert by_key["akta-kematian"].fee.free and by_key["akta-kematian"].charges
    assert by_key["sip-dokter"].office_of("verifikator_dinkes") == "dinkes"
    assert any(r.when for r in by_key["kartu-keluarga"].requirements)
    assert all(any(step.paused for step in s.steps) for s in sops)


def test_every_problem_is_reported_at_once() -> None:
    text = (BROKEN / "unknown_key.yaml").read_text().replace("sla: 30m", "sla: 30 menit")
    found = problems_of(text.replace("to: lurah}", "to: camat}"))
    assert len(found) == 3, found


def test_the_spec_example_message_names_the_step_meant() -> None:
    text = (WORKFLOWS.parent / "tests" / "sops" / "broken" / "unknown_target_step.yaml").read_text()
    (message,) = problems_of(text)
    assert message.endswith("which is not a step; did you mean `tanda_tangan`?")


def test_a_file_over_one_mebibyte_is_refused_before_parsing() -> None:
    big = b"title: x\n" + b"# padding\n" * (MAX_BYTES // 10 + 1)
    (message,) = problems_of(big)
    assert "the limit is 1 MiB" in message


def test_an_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    (message,) = problems_of("\n".join(lines))
    assert "aliases here expand past" in message


def test_text_that_is_not_utf8_is_refused_in_plain_words() -> None:
    (message,) = problems_of(b"sop: ktp\ntitle: \xff\xfe\n")
    assert message == "f.yaml:2:1: the file is not UTF-8 text"


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    (message,) = problems_of("- just\n- a list\n")
    assert "should be a set of `key: value` lines" in message


def test_object_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    found = problems_of(f'title: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert any("is not allowed" in m for m in found)
    assert not marker.exists()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises_anything_but_a_definition_error(text: str) -> None:
    try:
        load_sop(text)
    except DefinitionError as e:
        assert all(p.line >= 1 and p.column >= 1 and p.message for p in e.problems)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_sample_with_a_line_removed_or_changed_never_raises_a_traceback(
    data: st.DataObject,
) -> None:
    path = data.draw(st.sampled_from(SAMPLES))
    lines = path.read_text().splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    replacement = data.draw(st.sampled_from(["", "  - x", "x: [", "  foo: 1", lines[0]]))
    lines[index] = replacement
    try:
        load_sop("\n".join(lines))
    except DefinitionError:
        pass


def test_cli_validate_prints_file_line_column_and_exits_1_on_problems() -> None:
    result = CliRunner().invoke(main, ["validate", str(BROKEN)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    reported = {line.split(":")[0] for line in lines}
    assert reported == {str(p) for p in BROKEN_FILES}
    assert all(re.match(r"^.+\.yaml:\d+:\d+: .+", line) for line in lines)
    assert f"{len(BROKEN_FILES)} files checked" in result.stderr


def test_cli_validate_exits_0_on_the_samples() -> None:
    result = CliRunner().invoke(main, ["validate", str(WORKFLOWS)])
    assert result.exit_code == 0, result.output
    assert "all valid" in result.stderr


def test_cli_validate_reports_a_missing_file() -> None:
    result = CliRunner().invoke(main, ["validate", "no/such/file.yaml"])
    assert result.exit_code == 1
    assert result.stdout.startswith("no/such/file.yaml:1:1: cannot read the file")


def test_cli_diagram_prints_mermaid() -> None:
    result = CliRunner().invoke(main, ["diagram", str(SAMPLES[0])])
    assert result.exit_code == 0, result.output
    assert "stateDiagram-v2" in result.stdout


def test_cli_diagram_of_a_broken_file_prints_problems_not_a_traceback() -> None:
    result = CliRunner().invoke(main, ["diagram", str(BROKEN / "unknown_key.yaml")])
    assert result.exit_code == 1
    assert "unknown key `tittle`" in result.stderr
    assert "Traceback" not in result.output


def test_fee_collectors_default_to_the_first_steps_role() -> None:
    source = (WORKFLOWS / "akta-kematian.yaml").read_text()
    sop = load_sop(source)
    assert sop.fee.collected_by == () and sop.collectors == (sop.initial.role,)
    named = source.replace("fee:\n", "fee:\n  collected_by: [kasi, loket, kasi]\n", 1)
    assert load_sop(named).collectors == ("kasi", "loket")
    assert load_sop(source.replace("fee:\n", "fee:\n  collected_by: kasi\n", 1)).collectors == (
        "kasi",
    )


def test_an_empty_list_of_fee_collectors_is_refused() -> None:
    source = (WORKFLOWS / "akta-kematian.yaml").read_text()
    (message,) = problems_of(source.replace("fee:\n", "fee:\n  collected_by: []\n", 1))
    assert "`collected_by` is empty" in message
