"""The domain's error tree: one base class, precise subclasses, messages that say what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in an SOP file, at a 1-based line and column."""

    line: int
    column: int
    message: str

    def render(self, source: str) -> str:
        """Format as `file:line:column: message`."""
        return f"{source}:{self.line}:{self.column}: {self.message}"


class DefinitionError(EngineError):
    """An SOP file is not valid; carries every problem found."""

    def __init__(self, problems: Sequence[Problem], source: str = "<sop>") -> None:
        self.problems = sorted(problems)
        self.source = source
        super().__init__("\n".join(p.render(source) for p in self.problems))


class TransitionRefused(EngineError):
    """The transition does not leave the case's current step (HTTP 409)."""

    def __init__(self, name: str, step: str, allowed: Sequence[str]) -> None:
        self.name = name
        self.step = step
        self.allowed = list(allowed)
        names = ", ".join(f"`{a}`" for a in self.allowed) or "none"
        super().__init__(
            f"`{name}` cannot be fired from step `{step}`; transitions from this step: {names}"
        )


class RoleRefused(EngineError):
    """The actor lacks the role the transition needs (HTTP 403)."""

    def __init__(self, name: str, roles: Sequence[str]) -> None:
        self.name = name
        self.roles = list(roles)
        super().__init__(
            f"`{name}` may only be fired by role {' or '.join(f'`{r}`' for r in self.roles)}"
        )


class DeemedApproved(EngineError):
    """The application is deemed granted by law; it can no longer be rejected (HTTP 409)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


@dataclass(frozen=True)
class GuardFailure:
    """One guard that refused a transition, and what would satisfy it."""

    guard: str  # requires | comment | not_by | payment
    message: str


class GuardFailed(EngineError):
    """One or more guards refused the transition (HTTP 422)."""

    def __init__(self, name: str, failures: Sequence[GuardFailure]) -> None:
        self.name = name
        self.failures = list(failures)
        super().__init__("; ".join(f.message for f in self.failures))
