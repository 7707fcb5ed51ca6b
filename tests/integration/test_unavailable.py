"""The database going away for a moment: 503 with Retry-After, never a 500, then service.

The server reaches PostgreSQL through a TCP relay that the test cuts (every connection
dropped, new ones refused) and restores, as a restart or a network fault would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.service.context import Context
from engine.service.users import add_user
from engine.store.db import make_engine
from engine.store.migrate import upgrade
from tests.integration.conftest import free_port, start_server
from tests.integration.hostile import PROBLEM

pytestmark = pytest.mark.postgres


class Relay:
    """Forwards 127.0.0.1:<port> to PostgreSQL until cut."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        with self.lock:
            if self.listener is not None:
                # shutdown wakes the thread blocked in accept(); close alone would not
                with contextlib.suppress(OSError):
                    self.listener.shutdown(socket.SHUT_RDWR)
                self.listener.close()
                self.listener = None
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relayed(own_postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, Relay, Context]]:
    engine = make_engine(own_postgres_url)
    upgrade(engine)
    ctx = Context(engine)
    host_port = own_postgres_url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    relay = Relay((host, int(port or 5432)))
    relay.start()
    relayed_url = own_postgres_url.replace(host_port, f"127.0.0.1:{relay.port}")
    try:
        for base in start_server(relayed_url, tmp_path):
            yield base, relay, ctx
    finally:
        relay.cut()
        engine.dispose()


def test_an_unreachable_database_is_a_503_with_retry_after_then_service_resumes(
    relayed: tuple[str, Relay, Context],
) -> None:
    base, relay, ctx = relayed
    _who, token = add_user(ctx, "staff-relay", opd="opd-relay", roles=("loket",))
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    with client:
        assert client.get("/api/v1/cases").status_code == 200

        relay.cut()
        answers = [client.get("/api/v1/cases") for _ in range(6)]
        answers.append(client.post("/api/v1/cases", json={"sop": "x"}))
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith(PROBLEM)
            assert int(answer.headers["Retry-After"]) > 0
            assert answer.json()["status"] == 503

        relay.start()
        deadline = time.monotonic() + 30
        while (status := client.get("/api/v1/cases").status_code) != 200:
            assert status == 503, status
            assert time.monotonic() < deadline, "the service did not come back"
            time.sleep(0.2)
