"""The embedded broker hands a reader whole messages only (worker.broker)."""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection

from worker import broker


def test_a_reader_polling_while_messages_are_written_never_reads_a_partial_one(
    tmp_path: Path,
) -> None:
    """kombu's own filesystem channel lets a reader take a message file before its writer
    has written it, and the reader fails on an empty message; here every one arrives whole."""
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder,
               "processed_folder": folder, "control_folder": folder,
               "store_processed": False}  # fmt: skip
    count, got, errors = 1500, [], []

    def read() -> None:
        with Connection(f"{broker.ALIAS}://", transport_options=options) as conn:
            queue = conn.SimpleQueue("q")
            while len(got) < count and not errors:
                try:
                    message = queue.get(timeout=10)
                except Exception as e:  # noqa: BLE001 - the failure under test is any error
                    errors.append(repr(e))
                    return
                got.append(message.payload)
                message.ack()

    reader = threading.Thread(target=read)
    reader.start()
    with Connection(f"{broker.ALIAS}://", transport_options=options) as conn:
        queue = conn.SimpleQueue("q")
        for i in range(count):
            queue.put({"n": i, "pad": "x" * 2000})
    reader.join(60)
    assert errors == []
    assert sorted(p["n"] for p in got) == list(range(count))
