"""Signed checkpoints of the trail's Merkle tree, its proofs, witnesses and receipts.

The tree is extended and a checkpoint signed by `checkpoint`, which the scheduler runs
every few seconds, never in a request. Proofs are served under stored checkpoint sizes.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.domain import merkle, note
from engine.domain.note import Checkpoint, NoteError, Signer, Verifier
from engine.service.context import Context
from engine.service.errors import Conflict, Forbidden, Invalid, NotFound
from engine.service.queries import may_read_trail
from engine.service.refusals import deny
from engine.service.users import Principal
from engine.settings import Settings, get_settings
from engine.store import tree
from engine.store.tables import AuditEvent, Case
from engine.store.tables import Checkpoint as StoredCheckpoint

log = logging.getLogger("sopflow.checkpoints")
MAX_COSIGNATURES = 20  # per checkpoint, when any witness may cosign


def b64(raw: bytes) -> str:
    """Base64 as the checkpoints and proofs carry it."""
    return base64.b64encode(raw).decode()


def key_path(settings: Settings) -> Path:
    """Where the checkpoint signing key is kept."""
    if settings.checkpoint_key_file is not None:
        return settings.checkpoint_key_file
    return settings.private_folder("keys") / "checkpoint.key"


def write_key(path: Path, signer: Signer) -> None:
    """Write a private key readable by its owner only; never over an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, (signer.text + "\n").encode())
        os.fsync(handle)
        os.close(handle)
        os.link(temporary, path)  # fails if the file exists: a key is never replaced
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def signer(settings: Settings | None = None) -> Signer:
    """The key that signs checkpoints; on the embedded default it is made on first use."""
    settings = settings or get_settings()
    path = key_path(settings)
    if not path.exists():
        if settings.checkpoint_key_file is not None:
            raise FileNotFoundError(
                f"the checkpoint key file {path} does not exist; make it with "
                "`sopflow audit keygen`"
            )
        with contextlib.suppress(FileExistsError):  # another process made it first
            write_key(path, Signer.generate(settings.log_origin))
    key = Signer.parse(path.read_text())
    if key.kind != note.ED25519:
        raise NoteError(f"{path} holds a witness key, not a log key")
    return key


def checkpoint(ctx: Context, settings: Settings | None = None, limit: int = 100_000) -> int:
    """Add the events since the last checkpoint to the tree and sign a checkpoint of it.

    Safe to run from several workers at once: one runs at a time. Returns the size of the
    newest checkpoint.
    """
    settings = settings or get_settings()
    key = signer(settings)
    with ctx.uow() as uow:
        session = uow.session
        tree.lock(session)
        _old, size = tree.extend(session, limit)
        if tree.checkpoint_at(session, size) is not None:
            uow.rollback()
            return size
        digest = tree.root(session, size)
        signed = note.sign_checkpoint(Checkpoint(settings.log_origin, size, digest), key)
        tree.add_checkpoint(session, size, digest, signed, ctx.clock())
        uow.commit()
    return size


def _latest(ctx: Context, settings: Settings | None = None) -> StoredCheckpoint:
    with ctx.reader() as uow:
        latest = tree.latest_checkpoint(uow.session)
    if latest is None:
        checkpoint(ctx, settings)  # the first one, when the scheduler has not yet run
        with ctx.reader() as uow:
            latest = tree.latest_checkpoint(uow.session)
    assert latest is not None
    return latest


def latest_note(ctx: Context, settings: Settings | None = None) -> str:
    """The newest signed checkpoint with every cosignature it has."""
    latest = _latest(ctx, settings)
    with ctx.reader() as uow:
        lines = tree.cosignatures(uow.session, latest.size)
    return latest.note + "".join(lines)


def public_key(settings: Settings | None = None) -> dict[str, Any]:
    """What anyone needs to check checkpoints: the origin and the verifier key."""
    settings = settings or get_settings()
    key = signer(settings)
    return {
        "origin": settings.log_origin,
        "key": key.verifier.vkey,
        "witnesses": list(settings.witness_keys),
    }


def _size(value: int, name: str, most: int) -> None:
    if not 0 <= value <= most:
        raise Invalid(
            f"`{name}` is a tree size from 0 to {most}, the latest checkpoint's",
            [{"field": name, "message": f"0..{most}"}],
        )


def consistency(
    ctx: Context, first: int, second: int, settings: Settings | None = None
) -> dict[str, Any]:
    """The proof that the tree at `first` leaves is a prefix of the tree at `second`."""
    latest = _latest(ctx, settings)
    _size(second, "to", latest.size)
    _size(first, "from", second)
    with ctx.reader() as uow:
        proof = tree.compute(uow.session, lambda s: merkle.consistency_proof(s, first, second))
    return {"from": first, "to": second, "hashes": [b64(h) for h in proof]}


def _inclusion(session: Any, seq: int, size: int) -> dict[str, Any]:
    index = seq - 1
    leaf = tree.compute(session, lambda s: s(0, index))
    proof = tree.compute(session, lambda s: merkle.inclusion_proof(s, index, size))
    return {"leaf_index": index, "leaf_hash": b64(leaf), "hashes": [b64(h) for h in proof]}


def inclusion(
    ctx: Context,
    principal: Principal,
    seq: int,
    size: int | None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The inclusion proof of event `seq` under the checkpoint of `size` (the latest)."""
    may_read_trail(ctx, principal, "audit trail")
    latest = _latest(ctx, settings)
    if size is None and seq > latest.size:
        # an event newer than the latest checkpoint: sign one now rather than refuse
        checkpoint(ctx, settings)
        latest = _latest(ctx, settings)
    size = latest.size if size is None else size
    _size(size, "size", latest.size)
    if not 1 <= seq <= size:
        raise Invalid(
            f"event {seq} is not in the tree of size {size}: name a seq from 1 to {size}",
            [{"field": "seq", "message": f"1..{size}"}],
        )
    with ctx.reader() as uow:
        event = uow.session.get(AuditEvent, seq)
    if event is None:
        raise NotFound(f"no event {seq} in the trail")
    if not principal.inspector and event.opd != principal.opd:
        deny(ctx, principal, "an OPD admin reads only their own OPD's trail", opd=event.opd)
    with ctx.reader() as uow:
        proof = _inclusion(uow.session, seq, size)
    return {"seq": seq, "tree_size": size, **proof}


def receipt(ctx: Context, code: str, settings: Settings | None = None) -> dict[str, Any]:
    """A case's events as leaves with their inclusion proofs under the latest checkpoint."""
    latest = _latest(ctx, settings)
    with ctx.reader() as uow:
        case_id = uow.session.execute(
            select(Case.id).where(Case.tracking_code == code.strip().upper())
        ).scalar_one_or_none()
        if case_id is None:
            raise NotFound("no case has this tracking code; check it and try again")
        seqs = uow.session.execute(
            select(AuditEvent.seq)
            .where(AuditEvent.case_id == case_id, AuditEvent.seq <= latest.size)  # type: ignore[operator]
            .order_by(AuditEvent.seq)  # type: ignore[arg-type]
        ).scalars()
        events = [_inclusion(uow.session, seq, latest.size) for seq in seqs]
        lines = tree.cosignatures(uow.session, latest.size)
    return {"checkpoint": latest.note + "".join(lines), "events": events}


def add_cosignature(
    ctx: Context, cosigned: str, witness_key: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Accept a witness's cosignature of a stored checkpoint, to serve it with it."""
    settings = settings or get_settings()
    try:
        witness = Verifier.parse(witness_key)
        parsed = note.Note.parse(cosigned)
        body = Checkpoint.parse(parsed.text)
    except NoteError as e:
        raise Invalid(str(e)) from None
    if witness.kind != note.COSIGNATURE:
        raise Invalid("the witness key is not a cosignature (type 0x04) key")
    trusted = set()
    for configured in settings.witness_keys:
        try:
            trusted.add(Verifier.parse(configured))
        except NoteError as e:
            log.warning("a key in SOPFLOW_WITNESS_KEYS is left out: %s", e)
    if trusted and witness not in trusted:
        raise Forbidden(f"{witness.name} is not a witness this deployment trusts")
    line = next(
        (
            text
            for (name, raw), text in zip(parsed.signatures, parsed.lines, strict=True)
            if name == witness.name and witness.verifies(parsed.text, raw)
        ),
        None,
    )
    if line is None:
        raise Invalid(f"the note holds no valid cosignature by {witness.name}")
    with ctx.uow() as uow:
        stored = tree.checkpoint_at(uow.session, body.size)
        if stored is None or stored.note.split("\n\n")[0] + "\n" != parsed.text:
            raise Conflict(f"this deployment signed no such checkpoint of size {body.size}")
        if not trusted and len(tree.cosignatures(uow.session, body.size)) >= MAX_COSIGNATURES:
            raise Conflict(f"the checkpoint of size {body.size} has all the cosignatures it takes")
        added = tree.add_cosignature(uow.session, body.size, witness.name, line, ctx.clock())
        uow.commit()
    return {"size": body.size, "witness": witness.name, "added": added}


def verify_from(
    ctx: Context, size: int, digest: bytes, incremental: bool = False
) -> dict[str, Any]:
    """Recompute the trail and compare it with a checkpoint of `size` and root `digest`;
    `incremental`: only what was appended after it (`tree.verify_since`)."""
    check = tree.verify_since if incremental else tree.verify_against
    with ctx.reader() as uow:
        return asdict(check(uow.session, size, digest))


SINCE = ("checkpoint",)  # where `verify_trail` may start from, besides the first event


def verify_trail(
    ctx: Context, principal: Principal, since: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Recompute the chain and check it against the latest stored checkpoint's root.

    `since="checkpoint"`: trust the latest stored checkpoint, once its signature verifies
    with this deployment's key, and check only the events appended after it.
    """
    may_read_trail(ctx, principal, "audit trail")
    if since is not None and since not in SINCE:
        raise Invalid(
            "`since` is `checkpoint` (verify from the latest signed checkpoint) or absent",
            [{"field": "since", "message": "checkpoint"}],
        )
    with ctx.reader() as uow:
        latest = tree.latest_checkpoint(uow.session)
        size, digest = (latest.size, bytes(latest.root)) if latest else (0, merkle.EMPTY_ROOT)
        if since is None:
            result = asdict(tree.verify_against(uow.session, size, digest))
        elif latest is not None and not _signed_here(latest, settings):
            reason = (
                f"the stored checkpoint of size {size} is not signed by this deployment's "
                "key, or does not say what its row holds: it cannot be trusted to start from"
            )
            result = {"ok": False, "checked": 0, "first_bad_seq": None, "last_hash": "",
                      "reason": reason}  # fmt: skip
        else:
            result = asdict(tree.verify_since(uow.session, size, digest))
    result["checkpoint"] = {"size": size, "root": b64(digest)} if latest else None
    if since is not None:
        result["since"] = size
    return result


def _signed_here(stored: StoredCheckpoint, settings: Settings | None) -> bool:
    """Whether a stored checkpoint's note verifies with this deployment's key and names the
    size and root of its row."""
    try:
        body, _ = note.open_checkpoint(stored.note, signer(settings).verifier)
    except NoteError:
        return False
    return body.size == stored.size and body.root == bytes(stored.root)
