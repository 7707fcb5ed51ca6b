"""Small things a new user met in the first hour, each pinned."""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine.domain.validator import suggest
from tests.integration.conftest import Server


def test_a_refusal_in_the_csv_export_names_the_role_it_was_made_with(server: Server) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    teknis = office.staff("teknis")
    refused = teknis.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"})
    assert refused.status_code == 403, refused.text
    inspector = server.client("inspektur-csv", inspector=True)
    export = inspector.get(f"/api/v1/audit/export?format=csv&case={case['id']}")
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    denied = [r for r in rows if r["type"] == "access.denied"]
    assert [r["role"] for r in denied] == ["teknis"], denied
    opened = next(r for r in rows if r["type"] == "case.created")
    assert opened["role"] == "loket"


def test_another_offices_sop_is_said_to_belong_to_it(server: Server) -> None:
    theirs, ours = server.office(), server.office()
    answer = ours.admin.get(f"/api/v1/sops/{theirs.sop}")
    assert answer.status_code == 404
    assert f"belongs to `{theirs.opd}`" in answer.json()["detail"]


def test_only_close_names_are_suggested() -> None:
    assert suggest("alamat", ["nama", "nik"]) == ""
    assert "`rekam`" in suggest("rekm", ["rekam", "cetak"])
    assert "`warn`" in suggest("warning", ["warn", "escalate"])


def test_a_port_that_is_taken_is_said_at_once(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "SOPFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "sopflow", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "celery" not in (result.stdout + result.stderr).lower()
    assert elapsed < 30  # it once retried for seconds with the worker starting beside it
    assert not (tmp_path / "x.db").exists()


def test_one_unknown_document_among_several_is_named_and_nothing_is_marked(
    server: Server,
) -> None:
    office = server.office()
    loket = office.staff("loket")
    case = office.open_case(loket)
    answer = loket.post(
        f"/api/v1/cases/{case['id']}/received", json={"received": ["denah", "ktpp"]}
    )
    assert answer.status_code == 422
    body = answer.json()
    assert "`ktpp` is not a requirement" in body["detail"], body
    assert "no documents" not in body["detail"]
    assert loket.get(f"/api/v1/cases/{case['id']}").json()["received"] == case["received"]
