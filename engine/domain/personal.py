"""Personal data (UU 27/2022): what looks personal, how long it is kept, how it is shown.

Pure rules; storing, committing and erasing live in engine.store.personal and
engine.service.personal.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.domain.audit import mask
from engine.domain.model import SOP, FieldSpec

ERASED = "[erased]"

# field names that name personal data, as Indonesian and English forms write them; matched
# against the name's parts (`nik_pemohon`, `no_hp`, `tanggal_lahir`)
_PERSONAL_PARTS = {
    "nik", "nkk", "kk", "npwp", "paspor", "passport", "ktp", "sim",
    "nama", "name", "alamat", "address", "domisili",
    "telepon", "telp", "tlp", "hp", "phone", "ponsel", "whatsapp", "wa", "email", "surel",
    "lahir", "birth", "dob", "ibu", "agama", "religion", "diagnosa", "diagnosis", "penyakit",
    "rekam", "medis",
}  # fmt: skip
_PERSONAL_NAMES = {
    "tanggal_lahir", "tempat_lahir", "nama_ibu", "no_hp", "nomor_hp", "no_telp",
    "rekam_medis", "golongan_darah",
}  # fmt: skip
# a pattern asking for 16 digits is a NIK (or a KK number) whatever the field is called
_SIXTEEN_DIGITS = re.compile(r"\[0-9\]\{16\}|\\d\{16\}|\[0-9\]\{16,|\\d\{16,")

# a NIK: 16 digits standing alone (spaces or dots between groups allowed)
NIK_SHAPE = re.compile(r"(?<!\d)\d{6}[ .-]?\d{6}[ .-]?\d{4}(?!\d)")
# an Indonesian phone number: +62 or 62 or 0, then 8 and 7 to 11 more digits (groups allowed)
PHONE_SHAPE = re.compile(r"(?<![\d+])(?:\+62|62|0)[ -]?8\d{1,3}(?:[ .-]?\d{2,4}){2,3}(?!\d)")


def looks_personal(name: str, pattern: str | None = None) -> bool:
    """True when a field's name or pattern suggests it holds personal data."""
    lowered = name.lower()
    if lowered in _PERSONAL_NAMES or set(lowered.split("_")) & _PERSONAL_PARTS:
        return True
    return bool(pattern and _SIXTEEN_DIGITS.search(pattern))


def personal_numbers(text: str) -> list[str]:
    """The NIK-shaped and phone-shaped numbers in a text, as written there."""
    return [m.group(0) for m in NIK_SHAPE.finditer(text)] + [
        m.group(0) for m in PHONE_SHAPE.finditer(text)
    ]


def has_personal_number(value: object) -> bool:
    """True for text holding a NIK-shaped or phone-shaped number."""
    return isinstance(value, str) and bool(personal_numbers(value))


def redact(text: str) -> str:
    """Free text with its NIK- and phone-shaped numbers masked: what the inspectorate reads."""

    def hide(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return mask(digits) if len(digits) >= 12 else digits[:4] + "*" * (len(digits) - 4)

    return PHONE_SHAPE.sub(hide, NIK_SHAPE.sub(hide, text))


def masked(name: str, value: object) -> object:
    """How the inspectorate sees a personal value named `name` (`fields.nik`, `comment`)."""
    if value is None or value == ERASED:
        return value
    if name.startswith("fields."):
        return mask(value)
    return redact(str(value))


def purpose(name: str, sop_title: str, detail: Mapping[str, Any] | None = None) -> str:
    """What a personal value was collected for, in plain words."""
    if name.startswith("fields."):
        return f"the application for `{sop_title}`: the SOP's field `{name[7:]}`"
    if name == "comment":
        transition = (detail or {}).get("transition")
        what = f" when firing `{transition}`" if transition else ""
        return f"an officer's comment on the case{what}, kept as part of its record"
    return f"the case's record for `{sop_title}`: `{name}` of an act on it"


def personal_field(spec: FieldSpec) -> bool:
    """True for a field whose values are personal: marked `pii`, or named like it."""
    return spec.pii or looks_personal(spec.name, spec.pattern)


def personal_names(sop: SOP) -> frozenset[str]:
    """What is personal in a case of this SOP whatever it holds: its personal fields (as
    `fields.<name>`) and every free-text comment."""
    return frozenset({"comment", *(f"fields.{f.name}" for f in sop.fields if personal_field(f))})


def purposes(sop: SOP) -> Callable[[str, Mapping[str, Any]], str]:
    """What each personal value of a case of this SOP is collected for."""
    return lambda name, data: purpose(name, sop.title, data)


# ---- retention -----------------------------------------------------------------------------

_RETENTION = re.compile(r"^\s*(\d{1,3})\s*(y|mo|d)\s*$")


@dataclass(frozen=True)
class Retention:
    """How long personal data of a closed case is kept: whole years, months or days."""

    amount: int
    unit: str  # y | mo | d

    @classmethod
    def parse(cls, text: str) -> Retention:
        """`5y`, `18mo`, `30d`; ValueError in plain words otherwise."""
        m = _RETENTION.match(text) if isinstance(text, str) else None
        if m is None or int(m.group(1)) == 0:
            raise ValueError(
                f"`{text}` is not a retention period; write a whole number above 0 and a unit "
                "(y for years, mo for months, d for days), like `5y`, `18mo` or `30d`"
            )
        return cls(int(m.group(1)), m.group(2))

    def end(self, closed_at: datetime) -> datetime:
        """The instant personal data of a case closed at `closed_at` is due for erasure."""
        if self.unit == "d":
            return closed_at + timedelta(days=self.amount)
        months = self.amount * (12 if self.unit == "y" else 1)
        total = closed_at.month - 1 + months
        year, month = closed_at.year + total // 12, total % 12 + 1
        day = min(closed_at.day, calendar.monthrange(year, month)[1])
        return closed_at.replace(year=year, month=month, day=day)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"
