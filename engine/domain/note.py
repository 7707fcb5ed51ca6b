"""Signed notes, checkpoints and cosignatures as the C2SP specifications define them.

- signed note (c2sp.org/signed-note): text ending in a newline, a blank line, then lines
  `— <name> base64(key id ‖ signature)`; Ed25519 key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖
  public key)[:4]; verifier key `<name>+<hex key id>+base64(0x01 ‖ public key)`.
- checkpoint (c2sp.org/tlog-checkpoint): the text is the origin, the tree size and the
  base64 root, one a line.
- cosignature (c2sp.org/tlog-cosignature, `cosignature/v1`): a witness's Ed25519 signature
  over `cosignature/v1\\ntime <t>\\n` and the checkpoint's text; key id with type 0x04;
  the signature is `timestamp (8 bytes, big-endian) ‖ signature`.

A private key is kept as `PRIVATE+KEY+<name>+<hex key id>+base64(type ‖ 32-byte seed)`,
the form Go's `golang.org/x/mod/sumdb/note` reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
COSIGNATURE = 0x04
DASH = "\u2014 "
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note, key or checkpoint that cannot be read; the message says why in plain words."""


def key_id(name: str, kind: int, public: bytes) -> bytes:
    """The 4-byte id of a key: SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"`{name}` is not a key name: no spaces or `+`, and not empty")
    return name


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"the {what} is not base64") from None


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A public key by its name and type: checks a note's (co)signature lines."""

    name: str
    kind: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        """The 4-byte id its signature lines start with."""
        return key_id(self.name, self.kind, self.public)

    @property
    def vkey(self) -> str:
        """The verifier key string: `<name>+<hex id>+base64(type ‖ public key)`."""
        material = base64.b64encode(bytes([self.kind]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read a verifier key string."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is `<name>+<hex key id>+<base64 key>`")
        name, hex_id, material = parts
        raw = _b64(material, "verifier key")
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise NoteError("the verifier key is not an Ed25519 key")
        verifier = cls(_check_name(name), raw[0], raw[1:])
        if verifier.key_id.hex() != hex_id.lower():
            raise NoteError("the verifier key's id does not match its name and key")
        return verifier

    def _ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public)

    def verifies(self, text: str, signature: bytes) -> bool:
        """Whether `signature` (after its 4-byte key id) signs `text` by this key."""
        if signature[:4] != self.key_id:
            return False
        body = signature[4:]
        message = text.encode()
        if self.kind == COSIGNATURE:
            if len(body) != 72:
                return False
            when = int.from_bytes(body[:8], "big")
            message = cosigned_message(text, when)
            body = body[8:]
        try:
            self._ed25519().verify(body, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """An Ed25519 private key by its name: signs notes (type 0x01) or cosigns (0x04)."""

    name: str
    kind: int
    seed: bytes

    @classmethod
    def generate(cls, name: str, kind: int = ED25519) -> Signer:
        """A new random key."""
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(_check_name(name), kind, seed)

    @classmethod
    def parse(cls, text: str) -> Signer:
        """Read a private key string `PRIVATE+KEY+<name>+<hex id>+<base64>`."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a private key is `PRIVATE+KEY+<name>+<hex key id>+<base64>`")
        raw = _b64(parts[4], "private key")
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise NoteError("the private key is not an Ed25519 key")
        signer = cls(_check_name(parts[2]), raw[0], raw[1:])
        if signer.verifier.key_id.hex() != parts[3].lower():
            raise NoteError("the private key's id does not match its name and key")
        return signer

    @property
    def text(self) -> str:
        """The private key string (keep it secret)."""
        material = base64.b64encode(bytes([self.kind]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{material}"

    @property
    def verifier(self) -> Verifier:
        """Its public half."""
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        return Verifier(self.name, self.kind, _raw(key.public_key()))

    def sign(self, text: str, timestamp: int = 0) -> str:
        """The signature line for `text` (a cosignature carries `timestamp`)."""
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        prefix = self.verifier.key_id
        if self.kind == COSIGNATURE:
            signature = key.sign(cosigned_message(text, timestamp))
            prefix += timestamp.to_bytes(8, "big")
        else:
            signature = key.sign(text.encode())
        return f"{DASH}{self.name} {base64.b64encode(prefix + signature).decode()}\n"


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a `cosignature/v1` signs: the header, the time and the checkpoint's text."""
    if not 0 <= timestamp < 2**63:
        raise NoteError("a cosignature's time is out of range")
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class Note:
    """A signed note split into its text and its signature lines `(name, raw signature)`."""

    text: str
    signatures: tuple[tuple[str, bytes], ...]
    lines: tuple[str, ...]  # the signature lines as they were, each ending in a newline

    @classmethod
    def parse(cls, note: str) -> Note:
        """Read a signed note."""
        if any(ord(c) < 0x20 and c != "\n" for c in note):
            raise NoteError("a note holds no control characters but newlines")
        if not note.endswith("\n"):
            raise NoteError("a note ends with a newline")
        split = note.rfind("\n\n")
        if split < 0:
            raise NoteError("a note's text and its signatures are separated by a blank line")
        text, rest = note[: split + 1], note[split + 2 :]
        lines = rest.splitlines(keepends=True)
        if not lines or len(lines) > MAX_SIGNATURES:
            raise NoteError(f"a note has 1 to {MAX_SIGNATURES} signature lines")
        signatures = []
        for line in lines:
            if not line.startswith(DASH):
                raise NoteError("a signature line starts with `— `")
            name, _, value = line[len(DASH) :].rstrip("\n").partition(" ")
            raw = _b64(value, "signature")
            if len(raw) < 5:
                raise NoteError("a signature is too short")
            signatures.append((_check_name(name), raw))
        return cls(text, tuple(signatures), tuple(lines))

    def signed_by(self, verifier: Verifier) -> bool:
        """Whether a line of this note verifies by `verifier` (lines of others are ignored)."""
        return any(
            name == verifier.name and verifier.verifies(self.text, raw)
            for name, raw in self.signatures
        )

    def render(self) -> str:
        """The note as text again."""
        return self.text + "\n" + "".join(self.lines)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's text: the log's origin, its size and its root."""

    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        """The note text that is signed."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint's text (extension lines after the root are allowed)."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is an origin, a size and a root, one a line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteError("a checkpoint's origin line is empty")
        if not (size.isascii() and size.isdigit()) or (len(size) > 1 and size[0] == "0"):
            raise NoteError("a checkpoint's size is a decimal number without leading zeros")
        if len(size) > 19 or int(size) >= 2**63:
            raise NoteError("a checkpoint's size is below 2^63")
        digest = _b64(root, "checkpoint's root")
        if len(digest) != 32:
            raise NoteError("a checkpoint's root is 32 bytes")
        return cls(origin, int(size), digest)


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """A signed checkpoint note."""
    return checkpoint.text + "\n" + signer.sign(checkpoint.text)


def open_checkpoint(note: str, verifier: Verifier) -> tuple[Checkpoint, Note]:
    """Read a signed checkpoint and check its signature by `verifier`."""
    parsed = Note.parse(note)
    if not parsed.signed_by(verifier):
        raise NoteError(f"the checkpoint is not signed by the key of {verifier.name}")
    return Checkpoint.parse(parsed.text), parsed
