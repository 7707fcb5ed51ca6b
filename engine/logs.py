"""Logs as JSON lines, one object per record: what log collectors read without parsing."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and what the record carries."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            kind, _value, tb = record.exc_info
            # where it failed and the exception's type, never its message: a driver's error
            # quotes the row it failed on, a ValueError the value, and either may be a NIK
            frames = "".join(traceback.format_tb(tb))
            line["error"] = f"{frames}{kind.__name__ if kind else 'error'} (message withheld)"
        # ASCII escapes: no request path, however odd, can break a line for a log reader
        return json.dumps(line, ensure_ascii=True, default=str)


# What Celery says of every routine step (a task sent, received, succeeded: three lines a
# second with the sweep every second) is kept for DEBUG; warnings and errors still show.
ROUTINE = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


def configure_logging(level: str = "INFO") -> None:
    """Send every log record, and every warning, to standard error as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    routine = logging.DEBUG if logging.getLevelName(level) == logging.DEBUG else logging.WARNING
    for name in ROUTINE:
        logging.getLogger(name).setLevel(routine)
