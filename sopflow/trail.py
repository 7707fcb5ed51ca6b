"""`sopflow audit ...` and `sopflow witness`: the verifiable trail from the command line."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from engine.domain import merkle, note
from engine.domain.note import Checkpoint, Note, NoteError, Signer, Verifier


@click.group()
def audit() -> None:
    """The audit trail: its checkpoint key, checkpoints and verification."""


@audit.command("keygen")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="where to write the key [default: SOPFLOW_CHECKPOINT_KEY_FILE or the data folder's]",
)
@click.option("--name", default=None, help="the key's name [default: SOPFLOW_LOG_ORIGIN]")
def keygen(out: Path | None, name: str | None) -> None:
    """Make the Ed25519 key that signs the trail's checkpoints (owner-only file).

    Prints the verifier key to publish; never replaces a key that exists.
    """
    from engine.service.checkpoints import key_path, write_key
    from engine.settings import get_settings

    settings = get_settings()
    path = out or key_path(settings)
    try:
        signer = Signer.generate(name or settings.log_origin)
        write_key(path, signer)
    except NoteError as e:
        raise click.ClickException(str(e)) from None
    except FileExistsError:
        raise click.ClickException(f"{path} exists; a key is never replaced") from None
    click.echo(f"wrote {path} (mode 0600); its verifier key:")
    click.echo(signer.verifier.vkey)


@audit.command("checkpoint")
def checkpoint_now() -> None:
    """Add new events to the trail's tree and sign a checkpoint now (the scheduler does it
    every few seconds)."""
    from engine.service import checkpoints
    from sopflow.cli import _context

    size = checkpoints.checkpoint(_context())
    click.echo(f"checkpoint of size {size} signed")


@audit.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="a signed checkpoint kept elsewhere (by a witness, in a letter, in a newspaper)",
)
@click.option(
    "--since",
    is_flag=True,
    help="check only what was appended after the checkpoint: the stored tree must still "
    "hash to its root, and the events after it are chained on; the events up to it are "
    "not re-read (verify without --since does that)",
)
def verify(checkpoint_file: Path, since: bool) -> None:
    """Recompute the trail and check it against a checkpoint kept elsewhere.

    Exit 0 when the trail's events up to the checkpoint's size hash to its root and the
    chain verifies (with --since: when the stored tree matches the checkpoint and the
    events after it verify); 1 naming the first event that differs.
    """
    from engine.service import checkpoints
    from engine.settings import get_settings
    from sopflow.cli import _context

    text = checkpoint_file.read_text(encoding="utf-8", errors="replace")
    try:
        parsed = Note.parse(text) if "\n\n" in text else None
        body = Checkpoint.parse(parsed.text if parsed else text)
    except NoteError as e:
        raise click.ClickException(f"{checkpoint_file} is not a checkpoint: {e}") from None
    settings = get_settings()
    if parsed is not None and not parsed.signed_by(checkpoints.signer(settings).verifier):
        click.echo(
            "warning: the checkpoint is not signed by this deployment's key; "
            "comparing the trail with it all the same",
            err=True,
        )
    result = checkpoints.verify_from(_context(), body.size, body.root, incremental=since)
    if result["ok"] and since:
        click.echo(
            f"ok: the stored tree matches the checkpoint of size {body.size} (root "
            f"{merkle_b64(body.root)}) and the {result['checked']} events after it verify; "
            f"events up to {body.size} were not re-read"
        )
        return
    if result["ok"]:
        click.echo(
            f"ok: the first {body.size} events hash to the checkpoint's root "
            f"{merkle_b64(body.root)} and the chain of {result['checked']} events verifies"
        )
        return
    first = result["first_bad_seq"]
    named = f"first differing event: {first}" if first is not None else "no event can be named"
    click.echo(f"NOT OK against the checkpoint of size {body.size}: {result['reason']}")
    click.echo(named)
    sys.exit(1)


def merkle_b64(raw: bytes) -> str:
    """A hash in base64, as checkpoints show it."""
    import base64

    return base64.b64encode(raw).decode()


# ---- the witness -------------------------------------------------------------------------


class Unreachable(Exception):
    """The service could not be reached or did not answer as a log does."""


class NotConsistent(Exception):
    """The log is not an extension of what the witness saw, or a signature fails."""


def _write_private(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, text.encode())
        os.fsync(handle)
        os.close(handle)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _get(client: Any, url: str, **params: Any) -> Any:
    import httpx

    try:
        response = client.get(url, params=params or None)
    except httpx.HTTPError as e:
        raise Unreachable(f"{url} cannot be reached: {type(e).__name__}") from None
    if response.status_code != 200:
        raise Unreachable(f"{url} answered {response.status_code}")
    return response


def run_witness(url: str, state: Path, name: str) -> str:
    """One witnessing round; returns what was done, raises NotConsistent or Unreachable."""
    import httpx

    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    key_file = state / "witness.key"
    if not key_file.exists():
        _write_private(key_file, Signer.generate(name, note.COSIGNATURE).text + "\n")
    witness = Signer.parse(key_file.read_text())
    base = url.rstrip("/")
    with httpx.Client(timeout=30) as client:
        pinned_file = state / "log.vkey"
        if not pinned_file.exists():  # trust on first use: the log's key is pinned
            served = _get(client, f"{base}/public/checkpoint/key").json()
            try:
                Verifier.parse(served["key"])
            except (NoteError, KeyError, TypeError) as e:
                raise Unreachable(f"{base} serves no verifier key: {e}") from None
            _write_private(pinned_file, served["key"] + "\n")
        log_key = Verifier.parse(pinned_file.read_text())
        served_note = _get(client, f"{base}/public/checkpoint").text
        try:
            latest, parsed = note.open_checkpoint(served_note, log_key)
        except NoteError as e:
            raise NotConsistent(f"the checkpoint served by {base} fails: {e}") from None
        seen_file = state / "state.json"
        seen = json.loads(seen_file.read_text()) if seen_file.exists() else None
        new_root = merkle_b64(latest.root)
        if seen is not None:
            old_size, old_root = int(seen["size"]), seen["root"]
            old = f"size {old_size} (root {old_root})"
            new = f"size {latest.size} (root {new_root})"
            if seen.get("origin") != latest.origin:
                raise NotConsistent(
                    f"the log's origin changed from {seen.get('origin')} to {latest.origin}"
                )
            if latest.size < old_size:
                raise NotConsistent(
                    f"the log shrank: it now shows {new}, after {old} was cosigned; "
                    "events were removed"
                )
            proof = _get(
                client,
                f"{base}/public/checkpoint/consistency",
                **{"from": old_size, "to": latest.size},
            ).json()
            try:
                hashes = [_b64decode(h) for h in proof["hashes"]]
            except (KeyError, TypeError, ValueError):
                raise NotConsistent(f"the log's consistency proof is malformed: {new}") from None
            if not merkle.verify_consistency(
                old_size, latest.size, _b64decode(old_root), latest.root, hashes
            ):
                raise NotConsistent(
                    f"the log is not an extension of what this witness saw: {new} does not "
                    f"extend {old}; the trail was rewritten, truncated or forked"
                )
        timestamp = int(time.time())
        line = witness.sign(parsed.text, timestamp)
        _write_private(
            seen_file,
            json.dumps({"origin": latest.origin, "size": latest.size, "root": new_root}) + "\n",
        )
        _write_private(state / "checkpoint", parsed.text + "\n" + "".join(parsed.lines))
        try:
            answer = client.post(
                f"{base}/public/checkpoint/cosignature",
                json={"cosigned": served_note + line, "key": witness.verifier.vkey},
            )
        except httpx.HTTPError as e:
            raise Unreachable(f"the cosignature could not be sent: {type(e).__name__}") from None
        if answer.status_code not in (200, 201):
            raise Unreachable(
                f"the service refused the cosignature ({answer.status_code}): {answer.text[:300]}"
            )
    before = "first contact" if seen is None else f"extends size {seen['size']}"
    return f"consistent: size {latest.size} (root {new_root}), {before}; cosigned as {witness.name}"


def _b64decode(text: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


@click.command()
@click.argument("url")
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="the witness's folder: its key, the log's pinned key, the last size and root",
)
@click.option(
    "--name",
    default=None,
    help="the witness's key name, on first use [default: witness.<this host's name>]",
)
def witness(url: str, state: Path, name: str | None) -> None:
    """Check that a sopflow log extends what this witness saw before, and cosign it.

    Exit 0 when consistent (the cosignature is sent back to the service); 1 when the log
    was rewritten, truncated or forked, or a signature fails; 2 when the service cannot be
    reached.
    """
    chosen = name or f"witness.{socket.gethostname().split('.')[0] or 'local'}"
    try:
        click.echo(run_witness(url, state, chosen))
    except NotConsistent as e:
        click.echo(f"NOT CONSISTENT: {e}", err=True)
        sys.exit(1)
    except Unreachable as e:
        click.echo(f"unreachable: {e}", err=True)
        sys.exit(2)
    except NoteError as e:
        click.echo(f"NOT CONSISTENT: {e}", err=True)
        sys.exit(1)
