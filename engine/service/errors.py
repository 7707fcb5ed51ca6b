"""Errors of the service layer, each carrying the HTTP status it maps to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.domain.errors import EngineError
from engine.store.errors import DatabaseUnavailable

__all__ = ["DatabaseUnavailable"]  # re-exported: the API answers it with a 503


class ServiceError(EngineError):
    """A refusal the caller can act on."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        errors: Sequence[Mapping[str, Any]] = (),
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail
        self.errors = [dict(e) for e in errors]
        # further members of the problem (RFC 9457 extensions), e.g. a 412's current_version
        self.extensions = dict(extensions or {})
        super().__init__(detail)


class Unauthenticated(ServiceError):
    """No token, or a token nobody holds."""

    status = 401
    title = "Unauthenticated"


class Forbidden(ServiceError):
    """A known user without the right."""

    status = 403
    title = "Forbidden"


class NotFound(ServiceError):
    """Nothing there, or nothing the caller may see."""

    status = 404
    title = "Not found"


class Conflict(ServiceError):
    """The request clashes with the current state."""

    status = 409
    title = "Conflict"


class PreconditionFailed(ServiceError):
    """`If-Match` names a version that is no longer current."""

    status = 412
    title = "Precondition failed"


class Invalid(ServiceError):
    """The request is well formed but its content is not acceptable; `errors` says where."""

    status = 422
    title = "Unprocessable content"
