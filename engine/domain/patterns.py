"""Field patterns, matched in time linear in the value's length.

An SOP's `pattern` is written by an office, not by sopflow, and Python's `re` backtracks:
`^(a+)+$` takes seconds on 26 characters and holds a server worker meanwhile. RE2 (Google's
automaton-based engine, through its maintained binding) has no backtracking, so no pattern
can cost more than a pass over the value; what it cannot do that way (back-references,
look-arounds) it refuses to compile, and the validator reports that where the pattern is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported by the validator, not on stderr


class PatternError(ValueError):
    """A pattern RE2 will not compile; the message says why in plain words."""


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern; PatternError when it cannot be matched in linear time."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        reason = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
    try:
        re.compile(pattern)
    except re.error as e:
        raise PatternError(f"the pattern is not a valid regular expression: {e}") from None
    raise PatternError(
        f"the pattern cannot be matched in linear time ({reason}): back-references "
        "(`\\1`) and look-arounds (`(?=`, `(?!`, `(?<=`) are not available"
    )


def matches(pattern: str, value: str) -> bool:
    """Whether the pattern is found in the value (as `re.search` would find it)."""
    return compile_pattern(pattern).search(value) is not None
