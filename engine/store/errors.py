"""What the store raises that its callers can act on."""

from __future__ import annotations


class DatabaseUnavailable(Exception):
    """The database could not be reached, or dropped the connection: try again shortly."""
