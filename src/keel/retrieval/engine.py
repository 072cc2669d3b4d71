"""Engines for the retrieval database: SQLite through pysqlite3 with sqlite-vec, or Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from keel.core.errors import ConfigError
from keel.retrieval.backends import Backend, SQLiteBackend
from keel.retrieval.locking import AdvisoryLocks, FileLocks, ProcessLocks, WriterLocks
from keel.retrieval.pgvector_backend import HnswParams, PostgresBackend
from keel.retrieval.vector_cache import VectorCache


def _sqlite_module() -> Any:
    try:
        import pysqlite3.dbapi2 as module  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # platforms without the wheel: the stdlib module may still load it
        import sqlite3 as module

    if not hasattr(module.Connection, "enable_load_extension"):
        raise ConfigError(
            "this Python's SQLite cannot load extensions, which sqlite-vec needs; "
            "install pysqlite3-binary or use a Postgres retrieval.database_url",
            code="sqlite_extensions_unavailable",
        )
    return module


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    import sqlite_vec

    dbapi_connection.enable_load_extension(True)
    sqlite_vec.load(dbapi_connection)
    dbapi_connection.enable_load_extension(False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def open_engine(
    url: str, *, vector_cache: bool = True, hnsw: HnswParams | None = None
) -> tuple[Engine, Backend, WriterLocks]:
    """The engine, the backend that owns the per-collection tables, and writer locks."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        locks: WriterLocks = ProcessLocks()
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            locks = FileLocks(Path(f"{Path(database).resolve()}.locks"))
        engine = sa.create_engine(
            parsed.set(drivername="sqlite"),
            module=_sqlite_module(),
            connect_args={"check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _on_connect)
        return engine, SQLiteBackend(VectorCache(engine.connect) if vector_cache else None), locks
    if backend == "postgresql":
        engine = sa.create_engine(
            parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True, pool_size=5
        )
        return engine, PostgresBackend(hnsw), AdvisoryLocks(engine)
    raise ConfigError(
        f"retrieval database {url!r} is neither sqlite:/// nor postgresql://",
        code="database_url_invalid",
    )
