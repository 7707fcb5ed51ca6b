"""Posting to an office's webhook: where it may point, and how each delivery is signed.

A webhook URL is checked when it is set and again before every post, since what a name
resolves to can change: unless `allow_private_webhooks` is on, a host that resolves to a
loopback, private, link-local, shared or metadata address is refused. The post goes to the
address that was checked (the URL's name stays in `Host` and in TLS), so a second lookup
cannot swap in another. Redirects are not followed.

Deliveries are signed as Standard Webhooks (https://www.standardwebhooks.com/):
`webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
`{id}.{timestamp}.{body}`), keyed by the office's `whsec_` secret.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from engine.service.context import utc_now
from engine.service.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The webhook's host is not one sopflow may post to (or does not resolve)."""


def new_secret() -> str:
    """A new signing secret: `whsec_` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str, allow_private: bool) -> None:
    """Refuse (Invalid) a webhook URL that is not http(s) or points where it may not."""

    def refuse(message: str) -> Invalid:
        return Invalid(
            f"the webhook cannot be set: {message}", [{"field": "url", "message": message}]
        )

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise refuse(f"not a URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refuse("a webhook is an http(s) URL with a host")
    try:
        resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80), allow_private)
    except AddressRefused as e:
        raise refuse(str(e)) from None


def resolve(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """The addresses `host` resolves to, all of them ones sopflow may post to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise AddressRefused(f"`{host}` does not resolve ({e})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not _public(address):
                raise AddressRefused(
                    f"`{host}` is (or resolves to) {address}, a loopback, private, link-local "
                    "or otherwise non-public address; set SOPFLOW_ALLOW_PRIVATE_WEBHOOKS to "
                    "allow it"
                )
    return addresses


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # an IPv4 address carried in IPv6 is judged as itself
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if inner is not None:
            return _public(inner)
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Signed:
    """What goes on the wire: the exact body and the headers that sign it."""

    body: bytes
    headers: dict[str, str]


def sign(secret: str, message_id: str, body: bytes) -> Signed:
    """Sign `body` as message `message_id`, now."""
    # the timestamp is the wall clock's: receivers hold it against theirs to refuse replays
    now = utc_now()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }
    return Signed(body, headers)


def post(http: httpx.Client, url: str, signed: Signed, allow_private: bool) -> None:
    """Post to `url` at an address checked just now; raises AddressRefused or httpx errors."""
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    address = resolve(target.host, port, allow_private)[0]
    headers = {"Host": target.netloc.decode("ascii"), **signed.headers}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    response = http.post(
        str(target.copy_with(host=str(address))),
        content=signed.body,
        headers=headers,
        extensions=extensions,
    )
    response.raise_for_status()  # a redirect is a failure too: it is never followed
