"""Alembic environment for Keel's store; loaded by Alembic, never imported directly.

Keel runs migrations through ``keel.store.migrate``, which passes an open connection in
``config.attributes["connection"]``. Run by hand, the URL comes from the
``sqlalchemy.url`` option instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from keel.store.engine import create_engine
from keel.store.migrate import VERSION_TABLE
from keel.store.schema import metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        msg = "set sqlalchemy.url or pass a connection in config.attributes['connection']"
        raise RuntimeError(msg)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _configure(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
