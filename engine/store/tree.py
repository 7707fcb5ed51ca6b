"""The trail's Merkle tree in the database: perfect subtrees, checkpoints, cosignatures.

Every root and proof reads only the few perfect subtrees `engine.domain.merkle.plan` names,
in one query. The tree is extended outside requests, by the checkpoint service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, tuple_
from sqlmodel import Session

from engine.domain import merkle
from engine.domain.audit import GENESIS, chain_hash
from engine.store import audit, chain
from engine.store.tables import AuditEvent, Checkpoint, Cosignature, MerkleNode

# names the lock that lets one checkpoint run at a time on PostgreSQL
CHECKPOINT_LOCK_KEY = 0x50F10A0D18


def lock(session: Session) -> None:
    """Let one extension of the tree run at a time (SQLite: writers are serialised)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHECKPOINT_LOCK_KEY})


def leaf_data(event_hash: object) -> bytes:
    """What a leaf holds: the event's chain hash as its 32 bytes (a garbled one: its text)."""
    text_value = event_hash if isinstance(event_hash, str) else str(event_hash)
    try:
        raw = bytes.fromhex(text_value)
    except ValueError:
        return text_value.encode()
    return raw if len(raw) == 32 else text_value.encode()


def event_leaf(event_hash: object) -> bytes:
    """The leaf hash of an event with this chain hash."""
    return merkle.leaf_hash(leaf_data(event_hash))


def tree_size(session: Session) -> int:
    """How many leaves the stored tree holds."""
    last = session.execute(
        select(func.max(MerkleNode.idx)).where(MerkleNode.level == 0)  # type: ignore[arg-type]
    ).scalar()
    return 0 if last is None else int(last) + 1


def nodes(session: Session, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of these perfect subtrees, in one query."""
    if not wanted:
        return {}
    rows = session.execute(
        select(MerkleNode.level, MerkleNode.idx, MerkleNode.hash).where(
            tuple_(MerkleNode.level, MerkleNode.idx).in_(sorted(set(wanted)))  # type: ignore[arg-type]
        )
    ).all()
    return {(level, idx): bytes(digest) for level, idx, digest in rows}


def compute(session: Session, make: Callable[[merkle.Subtree], Any]) -> Any:
    """Run a root or proof computation on the stored tree, reading what it needs at once."""
    found = nodes(session, merkle.plan(make))

    def subtree(level: int, index: int) -> bytes:
        try:
            return found[(level, index)]
        except KeyError:
            raise merkle.ProofError(
                f"the stored tree lacks its subtree at level {level}, index {index}"
            ) from None

    return make(subtree)


def root(session: Session, size: int) -> bytes:
    """The stored tree's root at `size` leaves."""
    digest: bytes = compute(session, lambda s: merkle.root(s, size))
    return digest


def extend(session: Session, limit: int) -> tuple[int, int]:
    """Add the events after the tree's size (at most `limit`) to it; returns old, new size.

    Call it under `lock`. Only events that chain onto the tree's last event are added: the
    tree stops before a missing seq or an event whose hash does not follow, so a checkpoint
    never signs a broken chain (`verify` names that event).
    """
    size = tree_size(session)
    prev = GENESIS
    if size:
        prev = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == size)).scalar()
    names = ", ".join("CAST(data AS TEXT) AS data" if c == "data" else c for c in audit.COLUMNS)
    rows = session.execute(
        text(f"SELECT {names} FROM audit_event WHERE seq > :size ORDER BY seq LIMIT :limit"),
        {"size": size, "limit": limit},
    ).mappings()
    leaves = []
    for row in rows:
        seq = size + len(leaves) + 1
        if row["seq"] != seq or row["prev_hash"] != prev:
            break
        try:
            digest = chain_hash(prev, seq, audit.as_event(row))
        except (audit.Unreadable, ValueError, TypeError, OverflowError):
            break
        if row["hash"] != digest:
            break
        leaves.append(event_leaf(digest))
        prev = digest
    if not leaves:
        return size, size
    wanted = merkle.frontier_ranges(size)
    found = nodes(session, wanted)
    frontier = [found[r] for r in wanted]
    added = merkle.extend(size, frontier, leaves)
    for start in range(0, len(added), 5000):
        session.execute(
            insert(MerkleNode),
            [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in added[start : start + 5000]],
        )
    return size, size + len(leaves)


def latest_checkpoint(session: Session) -> Checkpoint | None:
    """The newest stored checkpoint."""
    return session.execute(
        select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)  # type: ignore[attr-defined]
    ).scalar_one_or_none()


def checkpoint_at(session: Session, size: int) -> Checkpoint | None:
    """The stored checkpoint of this size, if any."""
    return session.get(Checkpoint, size)


def add_checkpoint(session: Session, size: int, digest: bytes, note: str, at: datetime) -> None:
    """Store a signed checkpoint."""
    session.execute(
        insert(Checkpoint), [{"size": size, "root": digest, "note": note, "created_at": at}]
    )


def cosignatures(session: Session, size: int) -> list[str]:
    """The cosignature lines stored for the checkpoint of this size, oldest first."""
    return list(
        session.execute(
            select(Cosignature.line).where(Cosignature.size == size).order_by(Cosignature.id)  # type: ignore[arg-type]
        ).scalars()
    )


def add_cosignature(session: Session, size: int, witness: str, line: str, at: datetime) -> bool:
    """Store a witness's cosignature line; False when that witness already cosigned it."""
    exists = session.execute(
        select(Cosignature.id).where(Cosignature.size == size, Cosignature.witness == witness)
    ).first()
    if exists is not None:
        return False
    session.execute(
        insert(Cosignature),
        [{"size": size, "witness": witness, "line": line, "created_at": at}],
    )
    return True


def stored_leaves(session: Session, start: int, end: int) -> Iterator[bytes]:
    """The stored leaf hashes of `[start, end)`, in order."""
    result = session.execute(
        select(MerkleNode.hash)
        .where(MerkleNode.level == 0, MerkleNode.idx >= start, MerkleNode.idx < end)  # type: ignore[arg-type,operator]
        .order_by(MerkleNode.idx)  # type: ignore[arg-type]
        .execution_options(yield_per=5000)
    ).scalars()
    try:
        for digest in result:
            yield bytes(digest)
    finally:
        result.close()


def verify_against(session: Session, size: int, expected_root: bytes) -> audit.Verification:
    """Recompute the chain and the tree's root at `size`, and compare it with a checkpoint's.

    The whole chain is checked as `audit.verify` does; the first `size` events must also
    hash to `expected_root`. When they do not, the first event whose hash differs from the
    leaf the stored tree holds is named; when the stored tree was rebuilt to match a
    rewritten trail, no event can be named from one root alone, and the reason says so.
    """
    chain, leaves, stack = audit.scan(session, size)
    if not chain.ok and chain.first_bad_seq is not None and chain.first_bad_seq <= size:
        return chain
    if leaves == size and _root(stack) == expected_root:
        return chain
    tree_intact = tree_size(session) >= size and root(session, size) == expected_root
    seq = _first_differing(session, min(size, leaves))
    if seq is None and leaves < size:
        missing = leaves + 1
        reason = (
            f"event {missing} is missing: the checkpoint of size {size} covers {size} events, "
            f"the trail holds {leaves}"
        )
        return audit.Verification(False, chain.checked, missing, chain.last_hash, reason)
    if seq is None:
        reason = (
            f"the first {size} events do not hash to the root of the checkpoint of size "
            f"{size}, and the stored tree was rebuilt to match them: an event at or before "
            f"{size} was rewritten; an older checkpoint narrows down which"
        )
        return audit.Verification(False, chain.checked, None, chain.last_hash, reason)
    reason = f"event {seq} differs from the trail the checkpoint of size {size} signed"
    if not tree_intact:
        reason += " (the stored tree was rewritten as well)"
    return audit.Verification(False, chain.checked, seq, chain.last_hash, reason)


def verify_since(session: Session, size: int, expected_root: bytes) -> audit.Verification:
    """Check what was appended after a trusted checkpoint of `size` and root `expected_root`.

    It reads O(log size) stored nodes and the events after `size`, never the ones before:
    1. the stored tree's perfect subtrees of the first `size` leaves hash to the root;
    2. event `size`'s stored hash is the leaf the stored tree holds at `size - 1`, by its
       inclusion proof under the root (this ties the chain to the tree);
    3. the events after `size` are chained from event `size`'s hash (the reasons are the
       full verify's), their leaves appended to the trusted subtrees, and the root this
       gives compared with the stored tree's and the latest checkpoint's at their sizes.
    `checked` counts the events after `size` that hold. What it does not re-check: the
    events up to `size` (their content, their chain, and every tree node but the few it
    reads); an event rewritten there is found by the full verify (`verify_against`).
    """
    held = tree_size(session)
    if held < size:
        reason = (
            f"the stored tree holds {held} leaves, fewer than the {size} of the checkpoint "
            "it must match: it was cut back or rebuilt"
        )
        return audit.Verification(False, 0, None, GENESIS, reason)
    wanted = merkle.frontier_ranges(size)
    found = nodes(session, wanted)
    if len(found) != len(wanted) or _root([found[r] for r in wanted]) != expected_root:
        covered = ", ".join(
            f"{index << level | 1}–{(index + 1) << level}" for level, index in wanted
        )
        reason = (
            f"the stored tree no longer matches the checkpoint of size {size}: its nodes over "
            f"events {covered} do not hash to its root; the full verify names the event"
        )
        return audit.Verification(False, 0, None, GENESIS, reason)
    frontier = merkle.Frontier.of(size, [found[r] for r in wanted])
    prev = GENESIS
    if size:
        prev_hash = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == size)).scalar()
        if prev_hash is None:
            reason = f"event {size} is missing: the checkpoint of size {size} covers it"
            return audit.Verification(False, 0, size, GENESIS, reason)
        prev = prev_hash
        try:
            stored = compute(session, lambda s: s(0, size - 1))
            path = compute(session, lambda s: merkle.inclusion_proof(s, size - 1, size))
        except merkle.ProofError as e:
            reason = f"the stored tree no longer matches the checkpoint of size {size}: {e}"
            return audit.Verification(False, 0, None, prev, reason)
        if not merkle.verify_inclusion(event_leaf(prev), size - 1, size, path, expected_root):
            if merkle.verify_inclusion(stored, size - 1, size, path, expected_root):
                reason = (
                    f"event {size} differs from the trail the checkpoint of size {size} signed"
                )
                return audit.Verification(False, 0, size, prev, reason)
            reason = (
                f"the stored tree no longer matches the checkpoint of size {size}: "
                f"event {size}'s leaf and path in it do not hash to its root"
            )
            return audit.Verification(False, 0, None, prev, reason)
    # the sizes whose roots can be compared: the latest checkpoint's, the stored tree's
    latest = latest_checkpoint(session)
    targets: dict[int, list[tuple[str, bytes]]] = {}
    if latest is not None and latest.size > size:
        targets.setdefault(latest.size, []).append(
            (f"the checkpoint of size {latest.size}", bytes(latest.root))
        )
    if held > size:
        stored_root = root(session, held)
        targets.setdefault(held, []).append((f"the stored tree of size {held}", stored_root))
    checked, low = 0, size
    for high in [*sorted(targets), None]:
        scanned = _scan_after(session, low, high, prev, frontier)
        checked += scanned.checked
        if scanned.last_hash is not None:
            prev = scanned.last_hash
        if scanned.bad is not None:
            return audit.Verification(False, checked, scanned.bad, prev, scanned.reason)
        if high is None:
            break
        if low + scanned.checked < high:
            missing = low + scanned.checked + 1
            names = " and ".join(name for name, _ in targets[high])
            verb = "cover" if len(targets[high]) > 1 else "covers"
            reason = f"event {missing} is missing: {names} {verb} {high} events"
            return audit.Verification(False, checked, missing, prev, reason)
        for name, digest in targets[high]:
            if frontier.root() != digest:
                seq = _first_differing(session, high, low)
                reason = f"the {high} events do not hash to the root of {name}"
                if seq is not None:
                    reason = f"event {seq} differs from the leaf of {name}"
                return audit.Verification(False, checked, seq, prev, reason)
        low = high
    return audit.Verification(True, checked, None, prev)


def _scan_after(
    session: Session, low: int, high: int | None, prev: str, frontier: merkle.Frontier
) -> chain.Scan:
    """Check the events of `(low, high]` (high None: to the end) chained after `prev`,
    appending their leaves up to `high` to `frontier`."""
    names = ", ".join("CAST(data AS TEXT) AS data" if c == "data" else c for c in audit.COLUMNS)
    bound = "" if high is None else " AND seq <= :high"
    statement = text(f"SELECT {names} FROM audit_event WHERE seq > :low{bound} ORDER BY seq")
    result = session.execute(
        statement.execution_options(yield_per=5000), {"low": low, "high": high}
    )
    try:
        return chain.scan(iter(result), low + 1, prev, high or 0, frontier)
    finally:
        result.close()


def _root(stack: list[bytes]) -> bytes:
    """The root of a tree from its perfect subtrees, largest first."""
    if not stack:
        return merkle.EMPTY_ROOT
    result = stack[-1]
    for left in reversed(stack[:-1]):
        result = merkle.node_hash(left, result)
    return result


def _first_differing(session: Session, size: int, start: int = 0) -> int | None:
    """The seq of the first event in `(start, size]` whose leaf is not the stored tree's."""
    events = session.execute(
        select(AuditEvent.hash)
        .where(AuditEvent.seq > start, AuditEvent.seq <= size)  # type: ignore[operator]
        .order_by(AuditEvent.seq)  # type: ignore[arg-type]
        .execution_options(yield_per=5000)
    ).scalars()
    try:
        stored = stored_leaves(session, start, size)
        for index, digest in enumerate(events):
            if next(stored, None) != event_leaf(digest):
                return start + index + 1
    finally:
        events.close()
    return None
