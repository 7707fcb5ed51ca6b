"""The state machine of one SOP version, compiled once and shared by every case on it.

A case is not a long-lived `transitions` model: each command attaches a throwaway object
holding the case's current step to the shared machine, fires one trigger and detaches it.
What the guards need to know about the case (documents received, payment, who fired what)
comes in as immutable `CaseFacts`, so the machine never touches storage or the clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from transitions import Machine

from engine.domain.errors import (
    DeemedApproved,
    GuardFailed,
    GuardFailure,
    RoleRefused,
    TransitionRefused,
)
from engine.domain.lru import LRU
from engine.domain.model import SOP, Outcome, Transition

# `transitions` claims this attribute on every model and refuses a trigger of the same name.
MODEL_ATTRIBUTE = "state"
CACHE_SIZE = 256


@dataclass(frozen=True)
class Actor:
    """The member of staff asking to act, with the roles they hold."""

    user_id: str
    roles: frozenset[str]


@dataclass(frozen=True)
class CaseFacts:
    """What the guards need to know about one case, read from storage by the caller."""

    step: str
    received: frozenset[str] = frozenset()  # requirement ids marked received
    paid: bool = False  # the official fee has been recorded
    # transition name -> user ids who fired it on this case
    fired_by: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # roles that may act on the case because it was escalated to them
    extra_roles: frozenset[str] = frozenset()
    # a levy's current bill in rupiah (None: none issued yet)
    bill: int | None = None
    # the applicant's field values: which requirements apply (`when`)
    fields: Mapping[str, Any] = field(default_factory=dict)
    # the application is deemed granted (fiktif positif): no rejection may follow
    deemed_approved: bool = False


DEEMED_BASIS = "UU 30/2014 Pasal 53 (fiktif positif)"


@dataclass(frozen=True)
class Blocked:
    """A transition the actor's role allows that a guard blocks now."""

    name: str
    guard: str
    message: str


@dataclass(frozen=True)
class Fired:
    """The result of a transition that took place."""

    transition: str
    from_step: str
    to_step: str
    final: bool
    outcome: Outcome | None
    paused: bool  # the case now waits on the citizen and its clock stops


@dataclass(eq=False)
class _CaseModel:
    # eq=False: `transitions` finds models with `in`/`remove`, which must mean identity.
    state: str


@dataclass(eq=False)
class _Attempt:
    # Carries the request into the machine's condition and the failures back out of it,
    # so the guards are evaluated once, by the machine itself.
    facts: CaseFacts
    actor: Actor
    comment: str | None
    failures: list[GuardFailure] = field(default_factory=list)


def rupiah(amount: int) -> str:
    """Format an integer amount of rupiah the Indonesian way: `Rp 50.000`."""
    return "Rp " + f"{amount:,}".replace(",", ".")


class SopMachine:
    """One SOP version's state machine: who may fire what, which guards refuse, and firing."""

    def __init__(self, sop: SOP) -> None:
        self.sop = sop
        self._by_source: dict[tuple[str, str], Transition] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        self._steps = {s.id: s for s in sop.steps}
        self._documents = {r.id: r.name for r in sop.requirements}
        specs: list[dict[str, Any]] = []
        for t in sop.transitions:
            for source in t.sources:
                if (t.name, source) in self._by_source:
                    # `transitions` would try both in turn and silently pick one.
                    raise ValueError(f"transition `{t.name}` leaves step `{source}` twice")
                self._by_source[(t.name, source)] = t
                self._names[source] = (*self._names.get(source, ()), t.name)
                condition: Callable[[_Attempt], bool] = partial(self._guards_pass, t)
                # Only Python callables go to `transitions`: a string would be resolved as
                # a model attribute or an importable dotted path.
                specs.append(
                    {
                        "trigger": t.name,
                        "source": source,
                        "dest": t.dest,
                        "conditions": [condition],
                    }
                )
        self.machine = Machine(
            model=None,
            states=[{"name": s.id, "final": s.final} for s in sop.steps],
            initial=sop.initial.id,
            transitions=specs,
            auto_transitions=False,
            send_event=False,
            ignore_invalid_triggers=False,
            model_attribute=MODEL_ATTRIBUTE,
            name=f"{sop.key} v{sop.version}",
        )
        # add_model/remove_model mutate the shared `machine.models` list, and trigger runs
        # against it; the section is tens of microseconds, so one lock per SOP version costs
        # nothing measurable and keeps this correct without relying on GIL atomicity.
        self._lock = threading.Lock()

    def transitions_from(self, step: str) -> list[str]:
        """Names of the transitions leaving `step`, in file order (empty for an unknown step)."""
        return list(self._names.get(step, ()))

    def roles_for(self, facts: CaseFacts, name: str) -> list[str]:
        """Roles that may fire `name` on this case now: its own role, then escalation roles."""
        t = self._transition(facts, name)
        role = self.sop.role_for(t, facts.step)
        roles = [role] if role is not None else []
        return roles + sorted(facts.extra_roles - set(roles))

    def permitted(self, facts: CaseFacts, actor: Actor) -> list[str]:
        """Names the actor's roles allow from the case's step, whatever the guards say."""
        return [
            name
            for name in self.transitions_from(facts.step)
            if actor.roles.intersection(self.roles_for(facts, name))
        ]

    def allowed(self, facts: CaseFacts, actor: Actor) -> list[str]:
        """Names the actor may fire now: allowed by role and blocked by no guard.

        A missing comment blocks nothing here: the caller gives it with the firing.
        """
        blocked = {b.name for b in self.blocked(facts, actor)}
        return [n for n in self.permitted(facts, actor) if n not in blocked]

    def blocked(self, facts: CaseFacts, actor: Actor) -> list[Blocked]:
        """Each guard that blocks a transition the actor's role allows, with what it needs."""
        out = []
        for name in self.permitted(facts, actor):
            t = self._transition(facts, name)
            refusal = self.deemed_refusal(t, facts)
            if refusal is not None:
                out.append(Blocked(name, "deemed_approval", refusal))
            out += [
                Blocked(name, f.guard, f.message)
                for f in self._failures(t, facts, actor, None)
                if f.guard != "comment"
            ]
        return out

    def deemed_refusal(self, t: Transition, facts: CaseFacts) -> str | None:
        """Why `t` may not be fired on a case deemed granted, or None when it may."""
        dest = self._steps[t.dest]
        if facts.deemed_approved and dest.final and dest.outcome == "rejected":
            return (
                f"the application is deemed granted by law ({DEEMED_BASIS}): its service "
                f"time ran out undecided, so `{t.name}` can no longer reject it; "
                "issue the decision instead"
            )
        return None

    def check(
        self, facts: CaseFacts, actor: Actor, name: str, comment: str | None = None
    ) -> list[GuardFailure]:
        """Every guard of `name` that would refuse it now, each saying what would satisfy it."""
        return self._failures(self._transition(facts, name), facts, actor, comment)

    def fire(self, facts: CaseFacts, actor: Actor, name: str, comment: str | None = None) -> Fired:
        """Move the case along `name`, or raise TransitionRefused, RoleRefused or GuardFailed."""
        t = self._transition(facts, name)  # raises TransitionRefused first
        roles = self.roles_for(facts, name)
        if not actor.roles.intersection(roles):
            raise RoleRefused(name, roles)
        refusal = self.deemed_refusal(t, facts)
        if refusal is not None:
            raise DeemedApproved(name, refusal)
        case = _CaseModel(facts.step)
        attempt = _Attempt(facts, actor, comment)
        with self._lock:
            self.machine.add_model(case, initial=facts.step)
            try:
                moved = self.machine.events[name].trigger(case, attempt)
            finally:
                self.machine.remove_model(case)
        if not moved:
            raise GuardFailed(name, attempt.failures)
        dest = self._steps[case.state]
        return Fired(name, facts.step, dest.id, dest.final, dest.outcome, dest.paused)

    def _transition(self, facts: CaseFacts, name: str) -> Transition:
        t = self._by_source.get((name, facts.step))
        if t is None:
            raise TransitionRefused(name, facts.step, self.transitions_from(facts.step))
        return t

    def _guards_pass(self, t: Transition, attempt: _Attempt) -> bool:
        attempt.failures = self._failures(t, attempt.facts, attempt.actor, attempt.comment)
        return not attempt.failures

    def _failures(
        self, t: Transition, facts: CaseFacts, actor: Actor, comment: str | None
    ) -> list[GuardFailure]:
        # The fixed allow-list of guards: nothing in the SOP file can add another.
        failures: list[GuardFailure] = []
        for req in t.requires:
            spec = self.sop.requirement(req)
            if spec is not None and not spec.applies(facts.fields):
                continue  # not asked of this kind of application
            if req not in facts.received:
                label = f" ({self._documents[req]})" if req in self._documents else ""
                failures.append(
                    GuardFailure(
                        "requires", f"document `{req}`{label} must be marked received first"
                    )
                )
        if t.comment_required and not (comment and comment.strip()):
            failures.append(GuardFailure("comment", f"a comment is required to fire `{t.name}`"))
        for earlier in t.not_by:
            if actor.user_id in facts.fired_by.get(earlier, frozenset()):
                failures.append(
                    GuardFailure(
                        "not_by",
                        f"`{t.name}` must be fired by someone other than who fired "
                        f"`{earlier}` on this case",
                    )
                )
        if t.requires_payment and not facts.paid:
            if not self.sop.fee.levy:
                fee = rupiah(self.sop.fee.amount)
                message = f"the official fee of {fee} must be recorded first"
            elif facts.bill is None:
                message = (
                    f"no bill (SKRD) has been issued yet: role `{self.sop.fee.billed_by}` bills "
                    "the levy, then it must be paid in full"
                )
            else:
                message = f"the bill (SKRD) of {rupiah(facts.bill)} must be paid in full first"
            failures.append(GuardFailure("payment", message))
        return failures


_cache: LRU[tuple[str, int, str], SopMachine] = LRU(CACHE_SIZE)


def compile_sop(sop: SOP) -> SopMachine:
    """The shared machine for this SOP version, compiled on first use and cached."""
    key = (sop.key, sop.version, sop.digest)
    found = _cache.get(key)
    # Without a digest (an SOP built in code) the key cannot tell two contents apart.
    if found is not None and (sop.digest or found.sop is sop or found.sop == sop):
        return found
    # two threads missing at once both compile: the machines are alike, the last one is kept
    return _cache.put(key, SopMachine(sop))
