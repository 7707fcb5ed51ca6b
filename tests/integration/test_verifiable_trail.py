"""The verifiable trail against a real server on each database.

Signed checkpoints, consistency and inclusion proofs, receipts, and the witness run as the
inspectorate runs it (`sopflow witness`, a process of its own). Then an intruder with the
database in hand, triggers out of the way: recomputes the chain from an earlier event,
deletes the newest events, or forks the trail; first leaving the tree as it was, then
rebuilding it too so that the service signs the altered trail. The witness exits 1 naming
both sizes, `sopflow audit verify --checkpoint` names the first differing event, and a
receipt taken before no longer verifies against a checkpoint signed after.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, delete, select, text, update

from engine.domain import merkle, note
from engine.domain.audit import chain_hash
from engine.service import checkpoints
from engine.settings import Settings
from engine.store import audit
from engine.store.tables import AuditEvent
from tests.conftest import ROOT
from tests.integration.conftest import Office, Server, server_of_its_own

EVENTS = AuditEvent.__table__
GUARDED = ("audit_event", "merkle_node", "checkpoint")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of its own: the attacks below leave its trail altered."""
    yield from server_of_its_own(request.param, tmp_path_factory.mktemp(request.param), {})


def settings_of(server: Server) -> Settings:
    """The settings the server runs with: its data folder holds the checkpoint key."""
    assert server.log is not None
    return Settings(data_dir=server.log.parent / ".sopflow")


def sign(server: Server) -> int:
    """Sign a checkpoint now, as the scheduler does every few seconds."""
    return checkpoints.checkpoint(server.ctx, settings_of(server))


def activity(office: Office, cases: int = 2) -> list[str]:
    """Cases opened, accepted and paid: events in the trail. Returns the case ids."""
    loket = office.staff("loket")
    ids = []
    for _ in range(cases):
        case = office.open_case(loket)
        loket.post(f"/api/v1/cases/{case['id']}/transitions", json={"name": "terima"})
        paid = loket.post(
            f"/api/v1/cases/{case['id']}/payments", json={"amount": 50000, "method": "cash"}
        )
        assert paid.status_code == 201, paid.text
        ids.append(str(case["id"]))
    return ids


def cli(server: Server, *args: str) -> tuple[int, str]:
    """Run `sopflow ARGS` as its own process against the server's database and folder."""
    assert server.log is not None
    url = server.ctx.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "SOPFLOW_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "sopflow", *args],
        env=env,
        cwd=server.log.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def witness(server: Server, state: Path) -> tuple[int, str]:
    return cli(server, "witness", server.base_url, "--state", str(state), "--name", "w.test")


def verify_checkpoint(server: Server, file: Path) -> tuple[int, str]:
    return cli(server, "audit", "verify", "--checkpoint", str(file))


def head(server: Server) -> int:
    with server.ctx.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(seq) FROM audit_event")).scalar_one())


def case_seqs(server: Server, case_id: str) -> list[int]:
    with server.ctx.engine.connect() as conn:
        rows = conn.execute(
            select(EVENTS.c.seq).where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq)
        )
        return [int(r[0]) for r in rows]


@contextmanager
def intruder(server: Server) -> Iterator[Connection]:
    """A connection with every append-only trigger out of the way, as an intruder has."""
    with server.ctx.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            yield conn
            return
        triggers = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        for name, _sql in triggers:
            conn.execute(text(f'DROP TRIGGER "{name}"'))
        yield conn
        for _name, sql in triggers:
            conn.execute(text(sql))


def recompute_from(conn: Connection, seq: int) -> None:
    """Change event `seq`'s data and recompute the chain from it to the head: the attack."""
    rows = conn.execute(select(EVENTS).where(EVENTS.c.seq >= seq).order_by(EVENTS.c.seq))
    prev = conn.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == seq - 1)).scalar_one()
    for row in list(rows.mappings()):
        values = dict(row)
        if values["seq"] == seq:
            values["data"] = {**values["data"], "amount": 5000}
        digest = chain_hash(prev, values["seq"], audit.as_event(values))
        conn.execute(
            update(EVENTS)
            .where(EVENTS.c.seq == values["seq"])
            .values(data=values["data"], prev_hash=prev, hash=digest)
        )
        prev = digest


def cover_up(server: Server) -> int:
    """Throw away the tree and its checkpoints and have the service sign the altered trail."""
    with intruder(server) as conn:
        for table in ("cosignature", "checkpoint", "merkle_node"):
            conn.execute(text(f"DELETE FROM {table}"))
    return sign(server)


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def public_key(server: Server) -> note.Verifier:
    return note.Verifier.parse(httpx.get(f"{server.base_url}/public/checkpoint/key").json()["key"])


def receipt_holds(server: Server, receipt: dict[str, Any]) -> bool:
    """A citizen's check of a receipt taken earlier, against the checkpoint served now."""
    key = public_key(server)
    then, _ = note.open_checkpoint(receipt["checkpoint"], key)
    for event in receipt["events"]:
        proof = [b64(h) for h in event["hashes"]]
        leaf = b64(event["leaf_hash"])
        assert merkle.verify_inclusion(leaf, event["leaf_index"], then.size, proof, then.root)
    now, _ = note.open_checkpoint(httpx.get(f"{server.base_url}/public/checkpoint").text, key)
    if now.size < then.size:
        return False
    answer = httpx.get(
        f"{server.base_url}/public/checkpoint/consistency",
        params={"from": then.size, "to": now.size},
    ).json()
    proof = [b64(h) for h in answer["hashes"]]
    return merkle.verify_consistency(then.size, now.size, then.root, now.root, proof)


def test_a_witness_of_a_growing_log_cosigns_every_time(log: Server, tmp_path: Path) -> None:
    office = log.office()
    state = tmp_path / "witness"
    for round_ in range(3):
        activity(office, cases=1 + round_)
        size = sign(log)
        code, output = witness(log, state)
        assert code == 0, output
        assert f"size {size}" in output or "consistent" in output, output
        served = httpx.get(f"{log.base_url}/public/checkpoint")
        assert served.headers["Content-Type"].startswith("text/plain")
        parsed = note.Note.parse(served.text)
        assert parsed.signed_by(public_key(log))
        cosigner = note.Signer.parse((state / "witness.key").read_text())
        # the cosignature sent back is served with the checkpoint it cosigned (when the
        # scheduler has not signed a newer one since)
        if note.Checkpoint.parse(parsed.text).size == size:
            assert parsed.signed_by(cosigner.verifier), served.text
    assert (state / "witness.key").stat().st_mode & 0o777 == 0o600
    # the key file made on first use is the owner's alone
    key_file = settings_of(log).data_dir / "keys" / "checkpoint.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def readme_receipt_script() -> str:
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index("**Checking a receipt.**") :]
    return after[after.index("```python\n") + len("```python\n") : after.index("\n```\n")]


def forged_receipt(receipt: dict[str, Any]) -> dict[str, Any]:
    """The receipt with one leaf hash altered."""
    events = [dict(e) for e in receipt["events"]]
    leaf = bytearray(b64(events[-1]["leaf_hash"]))
    leaf[0] ^= 1
    events[-1]["leaf_hash"] = base64.b64encode(bytes(leaf)).decode()
    return {**receipt, "events": events}


def test_proofs_and_receipts_verify_and_bad_parameters_are_problems(
    log: Server, tmp_path: Path
) -> None:
    office = log.office()
    (case_id,) = activity(office, cases=1)
    size = sign(log)
    key = public_key(log)
    now, _ = note.open_checkpoint(httpx.get(f"{log.base_url}/public/checkpoint").text, key)
    assert now.size >= size
    consistency = httpx.get(
        f"{log.base_url}/public/checkpoint/consistency", params={"from": 1, "to": now.size}
    ).json()
    assert consistency["from"] == 1 and consistency["to"] == now.size
    first = merkle.leaf_hash(bytes.fromhex(head_hash(log, 1)))
    assert merkle.verify_consistency(
        1, now.size, first, now.root, [b64(h) for h in consistency["hashes"]]
    )
    seq = case_seqs(log, case_id)[-1]
    inspector = log.client(f"inspektur-{office.opd}", inspector=True)
    proof = inspector.get(f"/api/v1/audit/events/{seq}/inclusion", params={"size": now.size})
    assert proof.status_code == 200, proof.text
    body = proof.json()
    assert body["seq"] == seq and body["leaf_index"] == seq - 1 and body["tree_size"] == now.size
    assert b64(body["leaf_hash"]) == merkle.leaf_hash(bytes.fromhex(head_hash(log, seq)))
    hashes = [b64(h) for h in body["hashes"]]
    assert merkle.verify_inclusion(b64(body["leaf_hash"]), seq - 1, now.size, hashes, now.root)
    # the receipt: leaf hashes and proofs, and nothing of the applicant
    tracking = inspector.get(f"/api/v1/cases/{case_id}").json()["tracking_code"]
    receipt = httpx.get(f"{log.base_url}/public/track/{tracking}/receipt")
    assert receipt.status_code == 200, receipt.text
    assert "Budi" not in receipt.text and "3201234567890001" not in receipt.text
    assert case_id not in receipt.text
    assert len(receipt.json()["events"]) == len(case_seqs(log, case_id))
    assert receipt_holds(log, receipt.json())
    # the README's script checks it with the standard library and `cryptography` alone
    script = readme_receipt_script()
    for name, body in (("good", receipt.json()), ("forged", forged_receipt(receipt.json()))):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(body))
        done = subprocess.run(
            [sys.executable, "-c", script, key.vkey, str(path)], capture_output=True, text=True
        )
        if name == "good":
            assert done.returncode == 0, done.stderr
            assert f"events are in {now.origin}" in done.stdout, done.stdout
        else:
            assert done.returncode != 0 and "is not under the checkpoint" in done.stderr
    # refusals: problem+json, never a 500
    for params in ({"from": 5, "to": 2}, {"from": -1, "to": 2}, {"from": 0, "to": 10**12},
                   {"from": "x", "to": 1}, {"to": 1}):  # fmt: skip
        answer = httpx.get(f"{log.base_url}/public/checkpoint/consistency", params=params)
        assert 400 <= answer.status_code < 500, (params, answer.text)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
    for path, params in (
        (f"/api/v1/audit/events/{seq}/inclusion", {"size": 10**12}),
        (f"/api/v1/audit/events/{now.size + 10**6}/inclusion", {"size": now.size}),
        ("/api/v1/audit/events/0/inclusion", {}),
    ):
        answer = inspector.get(path, params=params)
        assert 400 <= answer.status_code < 500, (path, answer.text)
    missing = httpx.get(f"{log.base_url}/public/track/NOSUCHCODE/receipt")
    assert missing.status_code == 404
    forged = httpx.post(
        f"{log.base_url}/public/checkpoint/cosignature",
        json={"cosigned": httpx.get(f"{log.base_url}/public/checkpoint").text, "key": "x+1+2"},
    )
    assert forged.status_code == 422, forged.text


def head_hash(server: Server, seq: int) -> str:
    with server.ctx.engine.connect() as conn:
        return str(conn.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == seq)).scalar_one())


@pytest.mark.parametrize("attack", ["rewrite", "truncate", "fork"])
def test_an_altered_trail_is_caught(log: Server, tmp_path: Path, attack: str) -> None:
    office = log.office()
    victim, *_ = activity(office, cases=3)
    sign(log)
    state = tmp_path / "witness"
    code, output = witness(log, state)
    assert code == 0, output
    kept = tmp_path / "checkpoint"
    kept.write_text((state / "checkpoint").read_text())
    seen = note.Checkpoint.parse(note.Note.parse(kept.read_text()).text)
    inspector = log.client(f"inspektur-{office.opd}", inspector=True)
    tracking = inspector.get(f"/api/v1/cases/{victim}").json()["tracking_code"]
    receipt = httpx.get(f"{log.base_url}/public/track/{tracking}/receipt").json()
    assert receipt_holds(log, receipt)
    code, output = verify_checkpoint(log, kept)
    assert code == 0, output

    # the victim's payment, or the newest events, or everything from the payment on
    target = case_seqs(log, victim)[-1]
    assert target <= seen.size
    if attack == "truncate":
        target = seen.size - 2
        with intruder(log) as conn:
            conn.execute(delete(EVENTS).where(EVENTS.c.seq >= target))
    elif attack == "rewrite":
        with intruder(log) as conn:
            recompute_from(conn, target)
    else:
        with intruder(log) as conn:
            conn.execute(delete(EVENTS).where(EVENTS.c.seq >= target))
        activity(office, cases=3)  # another history from there on, longer than the first
        assert head(log) > seen.size

    # the tree still holds what was signed: the first differing event is named
    code, output = verify_checkpoint(log, kept)
    assert code == 1, output
    assert f"first differing event: {target}" in output, output
    verified = inspector.get("/api/v1/audit/verify").json()
    assert verified["ok"] is False and verified["first_bad_seq"] == target, verified

    # the intruder rebuilds the tree too: the service signs the altered trail, and the
    # witness refuses it, naming both sizes
    size = cover_up(log)
    code, output = witness(log, state)
    assert code == 1, output
    assert f"size {seen.size}" in output and f"size {size}" in output, output
    assert base64.b64encode(seen.root).decode() in output, output
    code, output = verify_checkpoint(log, kept)
    assert code == 1, output
    if attack == "truncate":
        assert f"first differing event: {target}" in output, output
    else:
        assert f"event at or before {seen.size} was rewritten" in output, output
    assert not receipt_holds(log, receipt)


def test_the_scheduler_signs_checkpoints_as_events_arrive(log: Server) -> None:
    key = public_key(log)
    httpx.get(f"{log.base_url}/public/checkpoint")  # one exists from here on
    activity(log.office(), cases=1)
    target = head(log)
    deadline = time.monotonic() + 90  # the beat signs every 5 s; a loaded machine is slower
    size = 0
    while size < target and time.monotonic() < deadline:
        served = httpx.get(f"{log.base_url}/public/checkpoint").text
        size = note.open_checkpoint(served, key)[0].size
        if size < target:
            time.sleep(0.5)
    assert size >= target, f"no checkpoint of size {target} signed within 90 s: {size}"
