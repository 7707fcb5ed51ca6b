"""Running the API under gunicorn from the `sopflow serve` command."""

from __future__ import annotations

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
        }
    ).run()
