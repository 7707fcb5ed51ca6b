"""Signed notes, checkpoints and cosignatures in the C2SP forms."""

from __future__ import annotations

import pytest

from engine.domain import note
from engine.domain.note import Checkpoint, Note, NoteError, Signer, Verifier

# the example of c2sp.org/signed-note: a verifier key and a note it verifies
EXAMPLE_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
EXAMPLE_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_the_signed_note_example_verifies_and_an_altered_one_does_not() -> None:
    verifier = Verifier.parse(EXAMPLE_VKEY)
    assert verifier.vkey == EXAMPLE_VKEY
    assert Note.parse(EXAMPLE_NOTE).signed_by(verifier)
    altered = EXAMPLE_NOTE.replace("example message", "example massage")
    assert not Note.parse(altered).signed_by(verifier)


def test_a_checkpoint_signed_and_cosigned_round_trips() -> None:
    log = Signer.generate("sopflow.example/trail")
    witness = Signer.generate("inspektorat.example/w1", note.COSIGNATURE)
    checkpoint = Checkpoint("sopflow.example/trail", 12, bytes(range(32)))
    signed = note.sign_checkpoint(checkpoint, log)
    lines = signed.split("\n")
    assert lines[:4] == [
        "sopflow.example/trail",
        "12",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "",
    ]
    assert lines[4].startswith("\u2014 sopflow.example/trail ")
    opened, parsed = note.open_checkpoint(signed, log.verifier)
    assert opened == checkpoint
    cosigned = signed + witness.sign(parsed.text, timestamp=1_700_000_000)
    again = Note.parse(cosigned)
    assert again.signed_by(log.verifier) and again.signed_by(witness.verifier)
    assert Signer.parse(log.text) == log
    assert Verifier.parse(witness.verifier.vkey) == witness.verifier
    # the log's key does not pass for the witness's, nor the other way round
    assert not Note.parse(signed).signed_by(witness.verifier)
    with pytest.raises(NoteError, match="not signed by the key"):
        note.open_checkpoint(signed, Signer.generate("sopflow.example/trail").verifier)


@pytest.mark.parametrize(
    "text",
    [
        "no newline",
        "a\nb\n",
        "a\n\n- x AAAA\n",
        "a\n\n\u2014 name not-base64!\n",
        "a\x01\n\n\u2014 n AAAAAAAA\n",
    ],
)
def test_malformed_notes_are_refused_in_words(text: str) -> None:
    with pytest.raises(NoteError):
        Note.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "o\n12\n",
        "o\n012\nAAAA\n",
        "o\nx\nAAAA\n",
        "o\n1\nAAAA\n",
        "\n1\nAAAA\n",
        "o\n9223372036854775808\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n" + "9" * 5000 + "\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)
