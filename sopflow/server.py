"""Running the API under gunicorn from the `sopflow serve` command."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api.app import create_app

        return create_app()


def run(host: str, port: int, workers: int) -> None:
    """Serve until stopped; sync workers (threads gave no throughput, only a longer p99)."""
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "sync",
            "accesslog": "-",
            "timeout": 30,
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
