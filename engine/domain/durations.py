"""Durations as SOP authors write them: `30m`, `2h`, `3d`, `1d 4h`, `90s`."""

from __future__ import annotations

import re
from dataclasses import dataclass

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_PART = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhd]\s*)+$")


@dataclass(frozen=True)
class Duration:
    """A working-time duration: parts applied left to right, `d` counting working days."""

    parts: tuple[tuple[int, str], ...]

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse `1d 4h`; raise ValueError with a plain-words message when it is not one."""
        if not _WHOLE.match(text):
            raise ValueError(
                f"`{text}` is not a duration; write a number and a unit "
                "(s, m, h or d), like `30m`, `2h`, `3d` or `1d 4h`"
            )
        return cls(tuple((int(n), unit) for n, unit in _PART.findall(text)))

    @classmethod
    def of_seconds(cls, seconds: int) -> Duration:
        """A duration of that many working seconds."""
        return cls(((seconds, "s"),))

    @property
    def days(self) -> int:
        """Working days in it (the `d` parts)."""
        return sum(n for n, unit in self.parts if unit == "d")

    @property
    def seconds(self) -> int:
        """Working seconds in it (the `s`, `m` and `h` parts)."""
        return sum(n * UNIT_SECONDS[unit] for n, unit in self.parts if unit != "d")

    def nominal_seconds(self, day_seconds: int) -> int:
        """Its length if a working day lasted `day_seconds`; only for ordering and display."""
        return self.days * day_seconds + self.seconds

    def __str__(self) -> str:
        return " ".join(f"{n}{unit}" for n, unit in self.parts)
