"""The README's tour runs as written: docs/tour.sh against a real server on the embedded
default reaches a closed case, a fired escalation and the reports; and every command block
the README marks as the tour's is in docs/tour.sh word for word, so neither can drift."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "docs" / "tour.sh"
MARK = "<!-- the tour: docs/tour.sh -->"


def tour_blocks() -> list[str]:
    """The README's shell blocks marked as the tour's."""
    readme = (ROOT / "README.md").read_text()
    return re.findall(re.escape(MARK) + r"\n```sh\n(.*?)```", readme, re.DOTALL)


def test_every_tour_block_of_the_readme_is_in_the_script() -> None:
    blocks = tour_blocks()
    assert len(blocks) >= 3, "the README marks its tour blocks"
    script = TOUR.read_text()
    missing = [block for block in blocks if block not in script]
    assert not missing, f"README blocks not in docs/tour.sh:\n{missing}"
    readme = (ROOT / "README.md").read_text()
    assert "../shared/spec/sop-format.md" not in readme


def test_the_tour_runs_against_a_real_server(tmp_path: Path) -> None:
    for name in (".venv", "workflows", "docs"):
        (tmp_path / name).symlink_to(ROOT / name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPFLOW_")}
    env |= {"SOPFLOW_TIMER_INTERVAL": "0.5", "API": f"http://127.0.0.1:{port}"}
    assert shutil.which("curl") and shutil.which("sh")
    with (tmp_path / "err.txt").open("w") as err, (tmp_path / "out.txt").open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "sopflow", "serve", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=err,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, (tmp_path / "err.txt").read_text()[-2000:]
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.2)
            run = subprocess.run(
                ["sh", str(TOUR)], cwd=tmp_path, env=env, capture_output=True, text=True,
                timeout=300,
            )  # fmt: skip
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    # the case walked to its end, step by step, and closed
    assert lines[:7] == ["perekaman", "pemantauan_prr", "verifikasi", "pencetakan",
                         "penyerahan", "selesai", "closed"], run.stdout  # fmt: skip
    history = next(line for line in lines if line.startswith("case.created"))
    assert "sla.warned" in history and "sla.escalated" in history
    assert '"visits"' in run.stdout or '"step"' in run.stdout  # the bottleneck report
    assert '"items"' in run.stdout  # the anomaly report
    assert '"ok": true' in run.stdout or '"ok":true' in run.stdout
