"""The embedded broker: kombu's filesystem transport, with each message written whole.

kombu's filesystem channel creates a message's file under its final name and then writes
it, while a reader takes any file with that name without waiting for the writer's lock; a
reader that comes between the two reads an empty message, and the worker stops with
`JSONDecodeError` (seen when the beat published just as the worker polled). Here a message
is written under a name no reader takes and renamed into place, which POSIX makes atomic:
a reader finds a whole message or none. Everything else is kombu's.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "sopflow-filesystem"


class Channel(filesystem.Channel):
    """A filesystem channel whose messages appear in their folder only when complete."""

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{int(round(filesystem.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # a leading dot and no `.<queue>.msg` ending: no reader takes it while it is written
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4()}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the channel above."""

    Channel = Channel


TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
