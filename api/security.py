"""What every answer carries for safety, and the refusal of clients that guess tokens.

A client (by remote address) that fails authentication `auth_failure_limit` times within
`auth_failure_window` seconds gets 429 with `Retry-After` on every `/api/` request until
the oldest failure leaves the window: it is refused before its token is looked at, so a
valid token from that address waits too (telling a right guess from a wrong one during the
lockout would let the guessing go on).
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request

from api.http import problem
from engine.service.ratelimit import FailureLimiter
from engine.settings import Settings

# JSON and problem answers load nothing, and may not be framed
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# the <style> of the logo that Swagger UI's standalone preset draws in its top bar (found
# with headless Chromium's CSP report; without it only the logo loses its colours)
SWAGGER_LOGO_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
# the docs pages: their own scripts, styles, images and the OpenAPI document, nothing else;
# their inline <script> and <style> blocks are allowed by hash, computed from the page sent
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self' {styles}; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_INLINE = {
    kind: re.compile(rf"<{kind}(?![^>]*\bsrc=)[^>]*>(.*?)</{kind}>", re.DOTALL | re.IGNORECASE)
    for kind in ("script", "style")
}


def install(app: Flask, settings: Settings) -> None:
    """Refuse token guessers and add the security headers, on `app`."""
    limiter = FailureLimiter(settings)
    app.extensions["sopflow.limiter"] = limiter

    @app.before_request
    def refuse_guessers() -> Response | None:
        if not request.path.startswith("/api/"):
            return None
        wait = limiter.retry_after(_client())
        if wait is None:
            return None
        response = problem(
            429,
            "Too many requests",
            f"too many failed authentications from this address; try again in {wait} seconds",
        )
        response.headers["Retry-After"] = str(wait)
        return response

    @app.after_request
    def secure(response: Response) -> Response:
        if response.status_code == 401:
            limiter.failed(_client())
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        if request.path.startswith("/docs") and response.mimetype == "text/html":
            headers["Content-Security-Policy"] = _docs_policy(response)
        else:
            headers.setdefault("Content-Security-Policy", API_POLICY)
        if request.path.startswith("/api/"):
            headers["Cache-Control"] = "no-store"
        return response


def _client() -> str:
    # no proxy headers are trusted: behind a reverse proxy, have it keep the client's
    # address (e.g. werkzeug's ProxyFix configured for exactly that proxy)
    return request.remote_addr or "unknown"


def _docs_policy(response: Response) -> str:
    page = response.get_data(as_text=True)
    allowed = {
        kind: " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
            for m in pattern.findall(page)
        )
        for kind, pattern in _INLINE.items()
    }
    styles = f"{allowed['style']} {SWAGGER_LOGO_STYLE}".strip()
    return DOCS_POLICY.format(scripts=allowed["script"], styles=styles)
