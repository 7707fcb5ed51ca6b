"""The database role the service runs as: it may append to the trail, never rewrite it.

The triggers that refuse UPDATE, DELETE and TRUNCATE on `audit_event` bind everyone but the
table's owner, who may drop or disable them. So the migrations run as the owner, and the
service connects as a role that owns nothing: it reads and writes the working tables, and
may only INSERT and SELECT on the trail.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, inspect, text

TRAIL = "audit_event"
# the trail's Merkle tree and its signed checkpoints are append-only as well
APPEND_ONLY = (TRAIL, "merkle_node", "checkpoint")
# only this much is ever done with a role's name in SQL: checked, then quoted
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RoleError(ValueError):
    """The role cannot be made as asked; the message says why in plain words."""


def grant_service_role(engine: Engine, role: str, password: str | None = None) -> list[str]:
    """Create `role` if missing and give it the service's rights; returns what was done."""
    if engine.dialect.name != "postgresql":
        raise RoleError(
            "a service role is a PostgreSQL feature; on SQLite the service is the file's owner"
        )
    if not _ROLE_NAME.match(role):
        raise RoleError(
            f"`{role}` is not a plain role name: use lowercase letters, digits and `_`"
        )
    done: list[str] = []
    with engine.begin() as connection:
        owner = connection.execute(text("SELECT current_user")).scalar_one()
        if owner == role:
            raise RoleError(f"`{role}` is the role that owns the tables; name another one")
        exists = connection.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
        ).first()
        quoted = f'"{role}"'
        if exists is None:
            connection.execute(text(f"CREATE ROLE {quoted} LOGIN"))
            done.append(f"created role {role}")
        if password:
            # a literal: ALTER ROLE takes no bind parameters
            literal = "'" + password.replace("'", "''") + "'"
            connection.execute(text(f"ALTER ROLE {quoted} PASSWORD {literal}"))
            done.append("set its password")
        database = connection.execute(text("SELECT current_database()")).scalar_one()
        connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {quoted}'))
        connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
        tables = inspect(connection).get_table_names(schema="public")
        for table in tables:
            connection.execute(text(f'REVOKE ALL ON TABLE "{table}" FROM {quoted}'))
            if table in APPEND_ONLY:
                rights = "SELECT, INSERT"
            elif table == "alembic_version":
                rights = "SELECT"
            else:
                rights = "SELECT, INSERT, UPDATE, DELETE"
            connection.execute(text(f'GRANT {rights} ON TABLE "{table}" TO {quoted}'))
        connection.execute(
            text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
        )
        done.append(
            f"granted {role} SELECT, INSERT, UPDATE, DELETE on the working tables and "
            f"only SELECT, INSERT on {', '.join(APPEND_ONLY)}"
        )
    return done
