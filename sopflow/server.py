"""Running the API under gunicorn from the `sopflow serve` command."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from gunicorn.app.base import BaseApplication

from engine.settings import get_settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api.app import create_app
        from engine.logs import configure_logging

        configure_logging()
        return create_app()


def run(host: str, port: int, workers: int) -> None:
    """Serve until stopped; one thread per worker (more gave no throughput, a longer p99)."""
    metrics = get_settings().data_dir / "metrics"
    # gunicorn's workers each count their requests; /metrics adds the files up
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            # one request at a time per process, as a sync worker would, but the process
            # tells the arbiter it lives from its own loop: a request that works for minutes
            # (verifying or exporting a long trail) is not cut at the liveness timeout
            "worker_class": "gthread",
            "threads": 1,
            # the app logs each request as a JSON line, with its request id
            "accesslog": None,
            "timeout": get_settings().worker_timeout,
            # the app answers a URL that is too long with a 414 problem of its own
            "limit_request_line": 0,
        }
    ).run()


@contextlib.contextmanager
def worker_beside() -> Iterator[subprocess.Popen[bytes]]:
    """Run `sopflow worker` (with its scheduler) as a child while the block runs."""
    child = subprocess.Popen([sys.executable, "-m", "sopflow", "worker"], env=os.environ.copy())
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
