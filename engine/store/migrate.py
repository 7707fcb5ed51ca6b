"""Creating and migrating the database with Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to this engine, with no ini file."""
    return alembic_config_for(engine.url.render_as_string(hide_password=False))


def alembic_config_for(url: str) -> Config:
    """An Alembic config for this URL, with no ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (the latest by default)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class NotReady(Exception):
    """The database cannot be used as it is; the message says what to do, in plain words."""


def _where(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def check_ready(url: str, schema: bool = True) -> None:
    """Refuse, in one plain sentence, a database that is missing, unreachable or (with
    `schema`) not migrated to this sopflow's schema.

    Nothing is created: a SQLite file that does not exist stays absent (opening it would
    make an empty one), unless `schema` is False (the caller is about to create it).
    """
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from engine.store.db import normalise_url

    try:
        parsed = make_url(normalise_url(url))
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ArgumentError(parsed.drivername)
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise NotReady(
            "SOPFLOW_DATABASE_URL is not a database sopflow can use; give a "
            "sqlite:///path/to/file.db or postgresql://user@host/database URL"
        ) from None
    upgrade_first = 'run "sopflow db upgrade" first'
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database not in ("", ":memory:") and not Path(database).exists():
            if schema:
                raise NotReady(f"there is no database at {database}; {upgrade_first}")
            return
    engine = create_engine(parsed)
    try:
        with engine.connect() as connection:
            has_table = connection.dialect.has_table(connection, "alembic_version")
            current = (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if has_table
                else None
            )
    except SQLAlchemyError as e:
        raise NotReady(_unreachable(parsed, e)) from None
    finally:
        engine.dispose()
    if not schema:
        return
    if current is None:
        raise NotReady(f"the database at {_shown(parsed)} is empty; {upgrade_first}")
    script = ScriptDirectory.from_config(alembic_config_for(parsed.render_as_string(False)))
    head = script.get_current_head()
    if current != head:
        raise NotReady(
            f"the database at {_shown(parsed)} is at schema {current}, this sopflow needs "
            f"{head}; {upgrade_first}"
        )


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _unreachable(url: URL, error: Exception) -> str:
    """What went wrong connecting, without the driver's traceback."""
    text = str(getattr(error, "orig", error)).lower()
    if url.get_backend_name() == "sqlite":
        return f"the SQLite file {url.database} cannot be opened as a database"
    if "does not exist" in text and "database" in text:
        return (
            f'database "{url.database}" does not exist on {_where(url)}; create it '
            f'(createdb {url.database}) and run "sopflow db upgrade"'
        )
    if "password" in text or "authentication" in text or "role" in text:
        return f"PostgreSQL at {_where(url)} refused the user `{url.username}`: check the URL"
    return f"cannot reach PostgreSQL at {_where(url)}: is it running, and is the URL right?"
