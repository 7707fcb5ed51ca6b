"""SOPFLOW_WITNESS_KEYS: a deployment that lists the witnesses it trusts takes cosignatures
from those alone, and serves them with the checkpoint they cosigned."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from engine.domain import note
from tests.integration.conftest import Server, server_of_its_own
from tests.integration.test_verifiable_trail import activity, public_key, sign

TRUSTED = note.Signer.generate("witness.trusted.example", note.COSIGNATURE)
STRANGER = note.Signer.generate("witness.stranger.example", note.COSIGNATURE)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server that trusts one witness key (and a garbled entry it must leave out)."""
    env = {"SOPFLOW_WITNESS_KEYS": json.dumps(["not a key", TRUSTED.verifier.vkey])}
    yield from server_of_its_own(request.param, tmp_path_factory.mktemp(request.param), env)


def cosign(server: Server, served: str, witness: note.Signer) -> httpx.Response:
    """Send `witness`'s cosignature of the served checkpoint, as `sopflow witness` does."""
    line = witness.sign(note.Note.parse(served).text, int(time.time()))
    return httpx.post(
        f"{server.base_url}/public/checkpoint/cosignature",
        json={"cosigned": served + line, "key": witness.verifier.vkey},
    )


def test_only_a_listed_witness_may_cosign(guarded: Server) -> None:
    activity(guarded.office(), cases=1)
    size = sign(guarded)
    served = httpx.get(f"{guarded.base_url}/public/checkpoint").text
    checkpoint, _ = note.open_checkpoint(served, public_key(guarded))
    assert checkpoint.size == size

    refused = cosign(guarded, served, STRANGER)
    assert refused.status_code == 403, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert "witness.stranger.example" in refused.json()["detail"], refused.text
    after = note.Note.parse(httpx.get(f"{guarded.base_url}/public/checkpoint").text)
    assert not after.signed_by(STRANGER.verifier)

    accepted = cosign(guarded, served, TRUSTED)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() == {"size": size, "witness": TRUSTED.name, "added": True}
    # no event arrived since: the checkpoint served is still the one cosigned, now with it
    now = httpx.get(f"{guarded.base_url}/public/checkpoint").text
    assert note.open_checkpoint(now, public_key(guarded))[0].size == size
    assert note.Note.parse(now).signed_by(TRUSTED.verifier), now
    assert not note.Note.parse(now).signed_by(STRANGER.verifier), now
    again = cosign(guarded, served, TRUSTED)
    assert again.status_code == 200, again.text
    assert again.json()["added"] is False
