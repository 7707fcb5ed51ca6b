"""Running the API under gunicorn from the `sopflow serve` command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import ThreadWorker

from engine.settings import get_settings

# gunicorn refuses a request line longer than this (its own ceiling is 8190 bytes) and a
# header field longer than this, before any of it reaches the application
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELD = 8190
MAX_HEADER_FIELDS = 100
# A body the application did not read (refused for its size, or before it was looked at:
# no token, no right) is read off the socket before the answer goes, up to this much and
# this long, so that the connection stays in step for the next request; gunicorn itself
# drains only 64 KiB and then closes a connection it has announced as kept alive.
DRAIN_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 5.0
_JSON_ON_STDERR = {
    "class": "logging.StreamHandler",
    "formatter": "json",
    "stream": "ext://sys.stderr",
}
GUNICORN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "engine.logs.JSONFormatter"}},
    "handlers": {"console": _JSON_ON_STDERR, "error_console": _JSON_ON_STDERR},
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        # the app logs each request itself (with its request id); gunicorn's access line
        # would repeat it, with the client's address
        "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
    },
}
_PROBLEMS = {
    400: "the request is not valid HTTP",
    414: f"the request line is longer than {MAX_REQUEST_LINE} bytes",
    431: (
        f"a request header is longer than {MAX_HEADER_FIELD} bytes, or there are more than "
        f"{MAX_HEADER_FIELDS} of them"
    ),
}


def write_problem(sock: socket.socket, status: int, reason: str, _message: str) -> None:
    """gunicorn's refusal of a request it could not parse, as problem+json.

    gunicorn has no hook for the format of these answers (its own are HTML), so this stands
    in for `gunicorn.util.write_error`. The message is not echoed: it may quote the request.
    """
    detail = _PROBLEMS.get(status, reason.lower())
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


class Worker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's thread worker, answering what it refuses itself as problem+json."""

    def init_process(self) -> None:
        gunicorn_util.write_error = write_problem
        super().init_process()


def drain_body(environ: dict[str, Any]) -> bool:
    """Read and drop what is left of the request body; False if it is too long or too slow."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return True
    sock = environ.get("gunicorn.socket")
    previous = sock.gettimeout() if sock is not None else None
    deadline = time.monotonic() + DRAIN_SECONDS
    drained = 0
    try:
        while drained <= DRAIN_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if sock is not None:
                sock.settimeout(remaining)
            chunk = stream.read(64 * 1024)
            if not chunk:
                return True
            drained += len(chunk)
        return False
    except (OSError, ValueError):
        return False
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous)


class ConnectionGuard:
    """Keep the connection in step with the requests on it, whatever the app read.

    Before the answer goes, what is left of the request body is drained; where it cannot be
    (too long, too slow), the answer says `Connection: close`. gunicorn ignores that header
    from the application, so its response object (reached through the bound
    `start_response` it hands to every request) is told directly.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not drain_body(environ):
                close = getattr(getattr(start_response, "__self__", None), "force_close", None)
                if close is not None:
                    close()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, telling what runs beside it to stop as soon as it stops itself."""

    def stop(self, graceful: bool = True) -> None:
        self.app.on_stop()
        super().stop(graceful)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], on_stop: Callable[[], None]) -> None:
        self.options = options
        self.on_stop = on_stop
        super().__init__()

    def run(self) -> None:
        _Arbiter(self).run()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api.app import create_app
        from engine.logs import configure_logging

        configure_logging()
        return ConnectionGuard(create_app())


def run(host: str, port: int, workers: int, on_stop: Callable[[], None] = lambda: None) -> None:
    """Serve until stopped; one thread per worker (more gave no throughput, a longer p99).

    `on_stop` is called when the server begins to stop, so that what runs beside it (the
    embedded worker) stops at the same time rather than after it.
    """
    metrics = get_settings().data_dir / "metrics"
    # gunicorn's workers each count their requests; /metrics adds the files up
    shutil.rmtree(metrics, ignore_errors=True)
    get_settings().private_folder("metrics")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            # one request at a time per process, as a sync worker would, but the process
            # tells the arbiter it lives from its own loop: a request that works for minutes
            # (verifying or exporting a long trail) is not cut at the liveness timeout
            "worker_class": "sopflow.server.Worker",
            "threads": 1,
            # the app logs each request as a JSON line, with its request id
            "accesslog": None,
            "timeout": get_settings().worker_timeout,
            # bounded, so that no request line or header can hold a worker: an unlimited
            # line let two 12 MB requests stall every worker for half a minute
            "limit_request_line": MAX_REQUEST_LINE,
            "limit_request_field_size": MAX_HEADER_FIELD,
            "limit_request_fields": MAX_HEADER_FIELDS,
            # gunicorn's own lines are JSON like every other line on standard error
            "logconfig_dict": GUNICORN_LOGGING,
            # no control socket in the home folder: `sopflow serve` is stopped by signal
            "control_socket_disable": True,
        },
        on_stop,
    ).run()


@contextlib.contextmanager
def worker_beside() -> Iterator[subprocess.Popen[bytes]]:
    """Run `sopflow worker` (with its scheduler) as a child while the block runs."""
    child = subprocess.Popen([sys.executable, "-m", "sopflow", "worker"], env=os.environ.copy())
    try:
        yield child
    finally:
        stop_child(child)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def stop_child(child: subprocess.Popen[bytes]) -> None:
    """Ask a child process to stop (warm: a task under way finishes), once."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
