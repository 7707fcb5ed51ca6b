"""Verifying from a trusted checkpoint reads only what was appended after it.

`GET /api/v1/audit/verify?since=checkpoint` starts from the latest stored checkpoint (its
signature checked with the deployment's own key), `sopflow audit verify --checkpoint FILE
--since` from a checkpoint kept elsewhere: the stored tree's few nodes under it must still
hash to its root, event N's hash must be the tree's leaf N - 1, and only the events after N
are chained on. So `checked` is the number of events after N; an event altered after N is
named in the full verify's words; a stored tree node altered under N is caught; and an
event altered before N is not (that is what the full verify is for).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from engine.domain import merkle
from engine.store.tables import MerkleNode
from tests.integration.conftest import Server, server_of_its_own
from tests.integration.test_verifiable_trail import (
    EVENTS,
    activity,
    cli,
    head,
    intruder,
    recompute_from,
    sign,
)

NODES = MerkleNode.__table__  # type: ignore[attr-defined]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of its own whose scheduler signs no checkpoint while a test runs."""
    env = {"SOPFLOW_CHECKPOINT_INTERVAL": "3600"}
    yield from server_of_its_own(request.param, tmp_path_factory.mktemp(request.param), env)


@pytest.fixture(scope="module")
def trail(log: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, int, Path]:
    """Events, a checkpoint of size N signed and kept in a file, and events after it."""
    office = log.office()
    activity(office, cases=2)
    size = sign(log)
    kept = tmp_path_factory.mktemp("kept") / "checkpoint"
    kept.write_text(httpx.get(f"{log.base_url}/public/checkpoint").text)
    activity(office, cases=2)
    assert head(log) > size + 2
    inspector = log.client(f"inspektur-{office.opd}", inspector=True)
    return inspector, size, kept


def verify(inspector: Any, **params: str) -> dict[str, Any]:
    response = inspector.get("/api/v1/audit/verify", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


@contextmanager
def event_altered(log: Server, seq: int) -> Iterator[None]:
    """Event `seq`'s data changed behind the API, its hashes left alone; then restored."""
    with log.ctx.engine.connect() as conn:
        data = conn.execute(select(EVENTS.c.data).where(EVENTS.c.seq == seq)).scalar_one()
    with intruder(log) as conn:
        conn.execute(
            update(EVENTS).where(EVENTS.c.seq == seq).values(data={**data, "amount": 1})
        )
    try:
        yield
    finally:
        with intruder(log) as conn:
            conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(data=data))


@contextmanager
def node_altered(log: Server, level: int, index: int) -> Iterator[None]:
    """One stored tree node's hash with a bit flipped; then restored."""
    where = (NODES.c.level == level) & (NODES.c.idx == index)
    with log.ctx.engine.connect() as conn:
        digest = bytes(conn.execute(select(NODES.c.hash).where(where)).scalar_one())
    with intruder(log) as conn:
        conn.execute(update(NODES).where(where).values(hash=bytes([digest[0] ^ 1]) + digest[1:]))
    try:
        yield
    finally:
        with intruder(log) as conn:
            conn.execute(update(NODES).where(where).values(hash=digest))


def test_an_intact_trail_is_checked_from_the_checkpoint_on(trail: tuple[Any, int, Path]) -> None:
    inspector, size, kept = trail
    log_head = head_of(inspector)
    result = verify(inspector, since="checkpoint")
    assert result["ok"] is True, result
    assert result["since"] == size and result["checkpoint"]["size"] == size, result
    assert result["checked"] == log_head - size, result
    full = verify(inspector)
    assert full["ok"] is True and full["checked"] == log_head, full
    assert "since" not in full or full["since"] is None
    # an unknown starting point is a problem, never a 500
    bad = inspector.get("/api/v1/audit/verify", params={"since": "yesterday"})
    assert bad.status_code == 422, bad.text
    assert bad.headers["Content-Type"].startswith("application/problem+json")


def head_of(inspector: Any) -> int:
    """The trail's newest seq, as the inspector reads it through the API."""
    return int(verify(inspector)["checked"])


def test_the_command_line_checks_from_a_kept_checkpoint(
    log: Server, trail: tuple[Any, int, Path]
) -> None:
    _inspector, size, kept = trail
    code, output = cli(log, "audit", "verify", "--checkpoint", str(kept), "--since")
    assert code == 0, output
    assert f"the {head(log) - size} events after it verify" in output, output
    assert f"events up to {size} were not re-read" in output, output


def test_an_event_altered_after_the_checkpoint_is_named_as_the_full_verify_names_it(
    log: Server, trail: tuple[Any, int, Path]
) -> None:
    inspector, size, kept = trail
    target = size + 2
    with event_altered(log, target):
        full = verify(inspector)
        since = verify(inspector, since="checkpoint")
        code, output = cli(log, "audit", "verify", "--checkpoint", str(kept), "--since")
    assert (full["ok"], full["first_bad_seq"]) == (False, target), full
    assert (since["ok"], since["first_bad_seq"]) == (False, target), since
    assert since["reason"] == full["reason"], (since, full)
    assert since["checked"] == target - size - 1, since
    assert code == 1 and f"first differing event: {target}" in output, output
    assert verify(inspector, since="checkpoint")["ok"] is True


def test_event_n_rewritten_with_the_chain_after_it_is_named(
    log: Server, trail: tuple[Any, int, Path]
) -> None:
    """Event N and the chain after it recomputed: its hash no longer is the leaf the
    checkpoint signed, and the events after it are chained on from a hash nobody signed."""
    inspector, size, kept = trail
    with log.ctx.engine.connect() as conn:
        saved = [
            dict(r)
            for r in conn.execute(
                select(EVENTS.c.seq, EVENTS.c.data, EVENTS.c.prev_hash, EVENTS.c.hash).where(
                    EVENTS.c.seq >= size
                )
            ).mappings()
        ]
    with intruder(log) as conn:
        recompute_from(conn, size)
    try:
        since = verify(inspector, since="checkpoint")
        full = verify(inspector)
    finally:
        with intruder(log) as conn:
            for row in saved:
                conn.execute(update(EVENTS).where(EVENTS.c.seq == row.pop("seq")).values(**row))
    assert (since["ok"], since["first_bad_seq"]) == (False, size), since
    assert f"event {size} differs" in since["reason"], since
    assert (full["ok"], full["first_bad_seq"]) == (False, size), full
    assert verify(inspector, since="checkpoint")["ok"] is True


def test_an_event_altered_before_the_checkpoint_is_left_to_the_full_verify(
    log: Server, trail: tuple[Any, int, Path]
) -> None:
    """The incremental verify trusts the checkpoint for events 1..N: it reads the stored
    tree's nodes under N and event N's hash, never the content of the events before N. An
    event before N whose content is altered (its stored hashes left alone) still passes it;
    the full verify, which recomputes every event, names it."""
    inspector, size, _kept = trail
    target = size - 1
    with event_altered(log, target):
        since = verify(inspector, since="checkpoint")
        full = verify(inspector)
    assert since["ok"] is True and since["checked"] == head(log) - size, since
    assert (full["ok"], full["first_bad_seq"]) == (False, target), full


def test_a_stored_tree_node_altered_under_the_checkpoint_is_caught(
    log: Server, trail: tuple[Any, int, Path]
) -> None:
    inspector, size, kept = trail
    level, index = merkle.frontier_ranges(size)[0]  # the largest subtree under N
    with node_altered(log, level, index):
        since = verify(inspector, since="checkpoint")
        code, output = cli(log, "audit", "verify", "--checkpoint", str(kept), "--since")
    assert since["ok"] is False and since["first_bad_seq"] is None, since
    assert f"no longer matches the checkpoint of size {size}" in since["reason"], since
    assert code == 1 and "no longer matches" in output, output
    # event N's leaf, on which the events after N are chained
    with node_altered(log, 0, size - 1):
        since = verify(inspector, since="checkpoint")
    assert since["ok"] is False and since["first_bad_seq"] is None, since
    assert "no longer matches" in since["reason"], since
    assert verify(inspector, since="checkpoint")["ok"] is True


def test_events_deleted_after_the_tree_was_extended_are_named(
    log: Server, trail: tuple[Any, int, Path]
) -> None:
    """The tree extended past the kept checkpoint, then its newest events deleted: the
    first missing one is named from the stored tree's size."""
    inspector, size, kept = trail
    newest = sign(log)
    assert newest > size + 1
    with log.ctx.engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(select(EVENTS).where(EVENTS.c.seq >= newest)).mappings()
        ]
    with intruder(log) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq >= :s"), {"s": newest})
    try:
        code, output = cli(log, "audit", "verify", "--checkpoint", str(kept), "--since")
    finally:
        with intruder(log) as conn:
            conn.execute(EVENTS.insert(), rows)
    assert code == 1 and f"first differing event: {newest}" in output, output
    assert f"event {newest} is missing" in output, output
    assert verify(inspector, since="checkpoint")["ok"] is True
