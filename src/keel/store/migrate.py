"""Run the store's Alembic migrations from code; no ``alembic.ini`` is needed.

The migration scripts ship inside the package (``keel/store/migrations``). On Postgres the
upgrade holds a transaction-scoped advisory lock, so replicas starting together take turns
instead of racing to create the same tables.

Alembic itself (with Mako and Pygments, ~12 MB resident) is imported only when there is
something to migrate: :func:`upgrade` first compares the database's version rows with the
heads of the shipped scripts, read from their ``revision`` / ``down_revision`` lines, and
returns at once when they match, which is every start of a server after ``keel db upgrade``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoSuchTableError, OperationalError, ProgrammingError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "keel_alembic_version"
# Arbitrary constant naming Keel's migration lock among the server's advisory locks.
_ADVISORY_LOCK_KEY = 0x6B65656C  # "keel"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts, optionally bound to a connection."""
    from alembic.config import Config  # deferred: see the module docstring

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this version of Keel."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the newest by default); a no-op when there."""
    if revision == "head" and _stored_revisions(engine) == shipped_heads():
        return
    from alembic import command

    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})")
        command.upgrade(alembic_config(connection), revision)
        connection.commit()


def shipped_heads(directory: Path = MIGRATIONS_DIR / "versions") -> frozenset[str]:
    """The head revisions of the shipped scripts: those no other script names as its
    ``down_revision``. Read from the scripts' module-level assignments, without Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in directory.glob("*.py"):
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            target, value = _assignment(node)
            if target == "revision" and isinstance(value, str):
                revisions.add(value)
            elif target == "down_revision" and isinstance(value, str):
                parents.add(value)
            elif target == "down_revision" and isinstance(value, tuple | list):
                parents.update(str(parent) for parent in value)
    return frozenset(revisions - parents)


def _assignment(node: ast.stmt) -> tuple[str | None, object]:
    """``name = literal`` or ``name: type = literal`` at module level, else ``(None, None)``."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        return None, None
    if not isinstance(target, ast.Name):
        return None, None
    try:
        return target.id, ast.literal_eval(value)
    except ValueError:
        return None, None


def _stored_revisions(engine: Engine) -> frozenset[str] | None:
    """The revisions in the database's version table; ``None`` when it cannot be read (no
    table yet), which sends :func:`upgrade` down Alembic's own path."""
    table = sa.table(VERSION_TABLE, sa.column("version_num"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(table.c.version_num)).scalars().all()
    except (NoSuchTableError, OperationalError, ProgrammingError):
        return None
    return frozenset(str(row) for row in rows)
