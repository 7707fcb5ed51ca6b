"""Webhooks: posted with no transaction open, only to public addresses, and signed.

Each backend gets a server of its own: the tests sweep every timer of its database with a
clock a day ahead, so the server's own worker (on the wall clock) never sees the
deliveries they make.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from engine.service import timers
from engine.service.context import Context, utc_now
from engine.service.errors import Invalid
from engine.service.notifications import deliver_webhooks, set_webhook
from engine.store.tables import WebhookDelivery
from tests.integration.conftest import Office, Server, server_of_its_own

NIK, NAME = "3201234567890001", "Budi Santoso"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hooked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of its own (the webhook settings are the defaults: no private addresses)."""
    yield from server_of_its_own(request.param, tmp_path_factory.mktemp(request.param), {})


class Receiver:
    """A webhook receiver on 127.0.0.1 that records each post as sent."""

    def __init__(self, delay: float = 0.0, failures: int = 0) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()  # ends a delay early, at teardown
        self.delay, self.failures = delay, failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((dict(self.headers.items()), body))
                receiver.arrived.set()
                receiver.release.wait(receiver.delay)
                failing = receiver.failures > 0
                receiver.failures -= failing
                try:
                    self.send_response(503 if failing else 204)
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_port}/sla"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def a_day_ahead(server: Server) -> Context:
    """A context on the server's database whose clock runs a day ahead: every rung is due."""
    return Context(server.ctx.engine, lambda: utc_now() + timedelta(days=1))


def fire_timers(server: Server, office: Office, cases: int = 1) -> Context:
    """Open cases in the office and fire all their rungs; the context that fired them."""
    loket = office.staff("loket")
    for _ in range(cases):
        office.open_case(loket, nik=NIK, nama=NAME)
    ahead = a_day_ahead(server)
    assert len(timers.sweep(ahead).deliveries) >= cases
    return ahead


def set_webhook_by_cli(server: Server, opd: str, url: str, allow_private: bool) -> tuple[int, str]:
    env = {**os.environ, "SOPFLOW_DATABASE_URL": server.ctx.engine.url.render_as_string(False)}
    env["SOPFLOW_ALLOW_PRIVATE_WEBHOOKS"] = "true" if allow_private else "false"
    done = subprocess.run(
        [sys.executable, "-m", "sopflow", "opd", "webhook", opd, url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_transition_is_not_held_up_by_a_slow_webhook_receiver(hooked: Server) -> None:
    office = hooked.office()
    slow = Receiver(delay=10.0)
    try:
        set_webhook(hooked.ctx, office.opd, slow.url, allow_private=True)
        ahead = fire_timers(hooked, office, cases=2)
        posting = threading.Thread(
            target=deliver_webhooks, args=(ahead,), kwargs={"allow_private": True}
        )
        posting.start()
        assert slow.arrived.wait(30), "the first delivery never reached the receiver"
        loket = office.staff("loket")
        case = office.open_case(loket)
        started = time.monotonic()
        moved = loket.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"})
        took = time.monotonic() - started
        assert moved.status_code == 200, moved.text
        # the receiver keeps each post 10 s (the sender gives up after 5): a transaction held
        # open while posting would hold this transition for several of those
        assert took < 5.0, f"the transition waited {took:.1f} s behind the webhook posts"
    finally:
        slow.close()
    posting.join(60)
    assert not posting.is_alive()


def test_deliveries_are_signed_with_the_secret_shown_when_the_webhook_is_set(
    hooked: Server, receiver: Receiver
) -> None:
    office = hooked.office()
    status, output = set_webhook_by_cli(hooked, office.opd, receiver.url, allow_private=True)
    assert status == 0, output
    secret = output.strip().splitlines()[-1]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]+=*", secret), output
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
    receiver.failures = 1
    ahead = fire_timers(hooked, office)
    assert deliver_webhooks(ahead, allow_private=True) >= 1  # the first post fails
    later = Context(hooked.ctx.engine, lambda: utc_now() + timedelta(days=2))
    assert deliver_webhooks(later, allow_private=True) >= 1  # and is retried
    # (only this office's posts: a port of an earlier test's receiver may be reused)
    posts = [p for p in receiver.posts if json.loads(p[1])["opd"] == office.opd]
    first, *rest = posts
    again = [p for p in rest if p[0]["webhook-id"] == first[0]["webhook-id"]]
    assert again, "a retry keeps the delivery's webhook-id"
    for headers, body in posts:
        payload = Webhook(secret).verify(body, headers)  # raises unless signed with it
        assert payload["opd"] == office.opd and payload["type"].startswith("sla.")
        # the signature is over exactly the body sent, per the Standard Webhooks recipe
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        key = base64.b64decode(secret.removeprefix("whsec_"))
        mac = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{mac}"
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 600
        assert NIK not in body.decode() and NAME not in body.decode()
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(body, headers)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fc00::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://100.64.0.1/hook",
        "ftp://example.org/hook",
        "http:///hook",
    ],
)
def test_a_webhook_to_a_private_address_is_refused(hooked: Server, url: str) -> None:
    office = hooked.office(publish=False)
    with pytest.raises(Invalid) as refused:
        set_webhook(hooked.ctx, office.opd, url)
    assert refused.value.status == 422 and refused.value.errors[0]["field"] == "url"


def test_the_command_refuses_a_private_webhook_and_shows_no_secret(hooked: Server) -> None:
    office = hooked.office(publish=False)
    status, output = set_webhook_by_cli(
        hooked, office.opd, "http://169.254.169.254/latest/meta-data/", allow_private=False
    )
    assert status == 1 and "non-public address" in output and "whsec_" not in output


def test_the_address_is_checked_again_when_posting(hooked: Server, receiver: Receiver) -> None:
    office = hooked.office()
    set_webhook(hooked.ctx, office.opd, receiver.url, allow_private=True)
    ahead = fire_timers(hooked, office)
    assert deliver_webhooks(ahead) == 0  # the setting is off now
    assert receiver.posts == []
    with hooked.ctx.reader() as uow:
        errors = uow.session.execute(
            select(WebhookDelivery.last_error, WebhookDelivery.delivered_at).where(
                WebhookDelivery.opd == office.opd
            )
        ).all()
    assert errors and all("non-public" in (e or "") and at is None for e, at in errors)


def test_a_delivery_is_json_naming_no_applicant(hooked: Server, receiver: Receiver) -> None:
    office = hooked.office()
    set_webhook(hooked.ctx, office.opd, receiver.url, allow_private=True)
    ahead = fire_timers(hooked, office)
    assert deliver_webhooks(ahead, allow_private=True) >= 1
    for headers, body in receiver.posts:
        assert headers["Content-Type"] == "application/json"
        payload = json.loads(body)
        assert set(payload) == {"type", "at", "opd", "sop", "case_id", "step", "data"}
        assert NIK not in body.decode() and NAME not in body.decode()
