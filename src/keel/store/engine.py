"""Engine creation for the two supported backends.

* SQLite (the default): the parent directory is created; every connection runs in WAL mode
  with ``synchronous=NORMAL``, foreign keys on and a busy timeout, so the server's request
  threads and the span exporter thread can share one file. SQLite's memory counts in the
  process's RSS and grew with each pooled connection's page cache (2 MB each by default, up
  to 8 kept connections): :class:`SQLiteTuning` bounds the pool, each page cache, and all
  of SQLite's heap in the process (a soft limit: past it SQLite recycles cache pages).
* Postgres through psycopg 3: ``postgresql://`` and ``postgres://`` URLs are rewritten to
  ``postgresql+psycopg://``; the pool is sized for a server and checks connections before use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from keel.core.errors import ConfigError
from keel.store.column_types import dump_json

SQLITE_BUSY_TIMEOUT_MS = 5000
_POSTGRES_ALIASES = frozenset({"postgres", "postgresql", "postgresql+psycopg"})


@dataclass(frozen=True)
class SQLiteTuning:
    """Connections kept by a SQLite store and the memory SQLite may hold."""

    pool_size: int = 4
    cache_kib: int = 2000
    memory_limit_mb: int = 8  # process-wide soft heap limit; 0 for none


def parse_url(url: str) -> URL:
    """Parse a store URL, pointing any Postgres URL at the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        msg = f"Store URL {url!r} is not a valid SQLAlchemy URL; use e.g. sqlite:///keel.db"
        raise ConfigError(msg, code="database_url_invalid") from exc
    if parsed.drivername in _POSTGRES_ALIASES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        msg = (
            f"Store URL {parsed.render_as_string(hide_password=True)!r} names an unsupported "
            "database; Keel runs on sqlite:/// or postgresql+psycopg:// URLs"
        )
        raise ConfigError(msg, code="database_url_invalid")
    return parsed


def describe(url: URL) -> str:
    """The URL as it may appear in messages and logs: without its password."""
    return url.render_as_string(hide_password=True)


def create_engine(url: str | URL, sqlite: SQLiteTuning | None = None) -> Engine:
    """An engine for ``url`` with Keel's connection settings for its backend."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite or SQLiteTuning())
    return sa.create_engine(
        parsed,
        json_serializer=dump_json,
        json_deserializer=orjson.loads,
        pool_size=10,
        max_overflow=20,
        pool_timeout=10,
        pool_recycle=1800,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10, "application_name": "keel"},
    )


def load_sqlite_json(value: Any) -> Any:
    """A JSON column's value as SQLite returns it. A column declared ``JSON`` has numeric
    affinity there, so a document that is a bare number comes back as an int or float."""
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


def _sqlite_engine(url: URL, tuning: SQLiteTuning) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    if in_memory:
        # One shared connection, or every checkout would see its own empty database.
        engine = sa.create_engine(
            url,
            json_serializer=dump_json,
            json_deserializer=load_sqlite_json,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        if not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            json_serializer=dump_json,
            json_deserializer=load_sqlite_json,
            # Connections beyond the pool serve a burst and are closed when returned.
            pool_size=tuning.pool_size,
            max_overflow=8,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
    pragmas = (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        f"cache_size=-{tuning.cache_kib}",
        f"soft_heap_limit={tuning.memory_limit_mb * 2**20}",
    )

    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
        finally:
            cursor.close()

    sa.event.listen(engine, "connect", configure)
    return engine
