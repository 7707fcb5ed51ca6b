"""Personal data rules: what looks personal, commitments, retention, the validator's warning."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.domain.audit import commitment, is_commitment
from engine.domain.errors import DefinitionError
from engine.domain.personal import Retention, personal_numbers, redact
from engine.domain.validator import load_sop
from sopflow.cli import main

SOP = Path(__file__).parent / "sops" / "surat-izin.yaml"


def unmarked() -> str:
    return SOP.read_text().replace(
        "nik: {type: string, pattern: '^[0-9]{16}$', required: true, pii: true}",
        "nik: {type: string, pattern: '^[0-9]{16}$', required: true}",
    )


def test_an_unmarked_nik_field_draws_a_warning_at_its_line_and_column() -> None:
    text = unmarked()
    assert "pii: true}" in text and text != SOP.read_text()
    sop = load_sop(text)
    (warning,) = sop.warnings
    line = text.splitlines()[warning.line - 1]
    assert line[warning.column - 1 :].startswith("nik:")
    assert warning.message.startswith("warning: field `nik` looks like personal data")
    assert load_sop(SOP.read_text()).warnings == ()


def test_validate_prints_the_warning_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "izin.yaml"
    path.write_text(unmarked())
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}:" in result.output and ": warning: field `nik`" in result.output


def test_retention_is_checked_and_counted_in_calendar_units() -> None:
    assert load_sop(SOP.read_text() + "retention: 5y\n").retention == "5y"
    with pytest.raises(DefinitionError) as e:
        load_sop(SOP.read_text() + "retention: 5 years\n")
    assert "retention" in e.value.problems[0].message
    closed = datetime(2026, 1, 31, 10, tzinfo=UTC)
    assert Retention.parse("1mo").end(closed) == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert Retention.parse("5y").end(closed).year == 2031
    assert Retention.parse("30d").end(closed) == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_a_commitment_hides_the_value_and_depends_on_the_secret() -> None:
    one = commitment(b"a" * 32, "fields.nik", "3201234567890001")
    assert is_commitment(one) and "3201" not in one
    assert one == commitment(b"a" * 32, "fields.nik", "3201234567890001")
    assert one != commitment(b"b" * 32, "fields.nik", "3201234567890001")
    assert one != commitment(b"a" * 32, "comment", "3201234567890001")


def test_nik_and_phone_shaped_numbers_are_found_in_free_text_and_masked() -> None:
    text = "NIK 3201234567890001, hubungi 0812-3456-7890 atau +6281234567890"
    assert personal_numbers(text) == ["3201234567890001", "0812-3456-7890", "+6281234567890"]
    shown = redact(text)
    assert "3201234567890001" not in shown and "3456-7890" not in shown
    assert "3201********0001" in shown
