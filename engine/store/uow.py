"""The unit of work: one transaction per command; only the service layer commits."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from types import TracebackType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session

from engine.domain.audit import Event
from engine.store import audit
from engine.store import personal as personal_data
from engine.store.db import READONLY
from engine.store.errors import DatabaseUnavailable
from engine.store.personal import Purpose
from engine.store.tables import Case


def _purpose(name: str, data: Mapping[str, Any]) -> str:
    return f"the case's record: `{name}` of an act on it"


class UnitOfWork:
    """A session whose changes and audit events land together on commit, or not at all."""

    def __init__(self, engine: Engine, readonly: bool = False) -> None:
        self._engine = engine.execution_options(**{READONLY: True}) if readonly else engine
        self.events: list[Event] = []
        # case id -> its version after this transaction, for cases saved outside the ORM
        self.versions: dict[str, int] = {}
        self._secrets: dict[str, bytes] = {}

    def __enter__(self) -> UnitOfWork:
        # expire_on_commit=False: a committed object is rendered as it is, without a
        # second round trip to reload it
        self.session = Session(self._engine, expire_on_commit=False)
        self.events = []
        self.versions = {}
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close, not rollback: a rollback would expire every loaded object, and the caller
        # still renders them after the unit of work ends
        self.session.close()
        self.events = []
        # a refused connection, a server restart, a lock wait past its timeout: the request
        # may be tried again, which is what the caller is told (503), not a failure of ours
        if isinstance(error, OperationalError | InterfaceError):
            raise DatabaseUnavailable(type(error.orig).__name__) from error

    def record(
        self, event: Event, personal: Collection[str] = (), purpose: Purpose | None = None
    ) -> None:
        """Queue an audit event; it is chained and inserted at commit, in this transaction.

        Its personal values (those named in `personal`, and any text holding a NIK- or
        phone-shaped number) are sealed first: the chain gets their commitments, and the
        values are kept beside it, erasable (engine.store.personal).
        """
        self.events.append(
            personal_data.seal(self.session, event, personal, purpose or _purpose, self._secrets)
        )

    def record_many(self, events: Iterable[Event]) -> None:
        """Queue many events with nothing named personal, as `record` would one by one.

        An event whose `data` holds no personal value is queued as it is (sealing it would
        change nothing); the verdicts on values met before are remembered, so thousands of
        events that repeat their texts (a reason, a clock's name) are checked cheaply.
        """
        memo: dict[Any, bool] = {}
        for event in events:
            if event.case_id is None or not personal_data.holds_personal(event.data, (), memo):
                self.events.append(event)
            else:
                self.record(event)

    def commit(self) -> list[int]:
        """Flush the changes, append the queued events last, commit; returns the events' seqs.

        The events of a case carry its version after this transaction: the ORM's, or the
        one put in `versions` by a save that wrote the case without the ORM.
        """
        self.session.flush()
        versions = {  # the versions the flush gave the cases changed here
            obj.id: obj.version for obj in self.session.identity_map.values()
            if isinstance(obj, Case)
        } | self.versions  # fmt: skip
        seqs = audit.append(self.session, self.events, versions)
        self.session.commit()
        self.events = []
        self.versions = {}
        return seqs

    def rollback(self) -> None:
        """Forget everything not yet committed and release the transaction's locks.

        Loaded objects stay readable (detached, not expired), so a refusal can still name
        the case it refused.
        """
        self.session.expunge_all()
        self.session.rollback()
        self.events = []
        self.versions = {}
        self._secrets = {}  # a secret made in the transaction is gone with it
