"""Alembic environment: the URL comes from the caller (`sopflow db upgrade`), never a file."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import engine.store.tables  # noqa: F401  (registers the tables on the metadata)
from engine.store.db import make_engine

config = context.config
connection = config.attributes.get("connection")


def run(conn: object) -> None:
    context.configure(
        connection=conn,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    with make_engine(config.get_main_option("sqlalchemy.url") or "").connect() as conn:
        run(conn)
