"""`sopflow audit keygen` and `sopflow witness` without a server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.domain.note import ED25519, Signer, Verifier
from sopflow.cli import main


def test_keygen_writes_an_owner_only_key_once_and_prints_its_verifier_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "keys" / "checkpoint.key"
    monkeypatch.setenv("SOPFLOW_LOG_ORIGIN", "layanan.example.go.id/trail")
    runner = CliRunner()
    first = runner.invoke(main, ["audit", "keygen", "--out", str(key)])
    assert first.exit_code == 0, first.output
    assert key.stat().st_mode & 0o777 == 0o600
    signer = Signer.parse(key.read_text())
    assert signer.kind == ED25519 and signer.name == "layanan.example.go.id/trail"
    vkey = first.output.strip().splitlines()[-1]
    assert Verifier.parse(vkey) == signer.verifier
    again = runner.invoke(main, ["audit", "keygen", "--out", str(key)])
    assert again.exit_code == 1 and "never replaced" in again.output
    assert Signer.parse(key.read_text()) == signer


def test_a_witness_that_cannot_reach_the_service_exits_2(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens on it once closed
    result = CliRunner().invoke(
        main, ["witness", f"http://127.0.0.1:{port}", "--state", str(tmp_path / "w")]
    )
    assert result.exit_code == 2, result.output
    assert "cannot be reached" in result.output
    assert (tmp_path / "w" / "witness.key").stat().st_mode & 0o777 == 0o600
