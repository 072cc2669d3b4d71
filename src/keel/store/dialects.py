"""The two statements the store needs that SQL spells differently per backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert


def _insert(dialect: Dialect, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    if dialect.name == "sqlite":
        return sqlite.insert(table)
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    msg = f"the store does not support the {dialect.name} dialect"
    raise NotImplementedError(msg)


def insert_or_ignore(dialect: Dialect, table: sa.Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING``: rows whose key exists are skipped silently."""
    return _insert(dialect, table).on_conflict_do_nothing()


def upsert(
    dialect: Dialect, table: sa.Table, keys: Sequence[str], update: Mapping[str, Any]
) -> Insert:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET update``."""
    return _insert(dialect, table).on_conflict_do_update(index_elements=keys, set_=update)


def upsert_adding(
    dialect: Dialect, table: sa.Table, keys: Sequence[str], summed: Sequence[str]
) -> Insert:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET c = c + excluded.c`` for each summed ``c``."""
    insert = _insert(dialect, table)
    added = {name: table.c[name] + insert.excluded[name] for name in summed}
    return insert.on_conflict_do_update(index_elements=keys, set_=added)
