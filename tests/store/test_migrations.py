"""Migrations build the schema on a fresh database, repeat harmlessly and match schema.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from keel.core.errors import ConfigError
from keel.store import Store
from keel.store.engine import parse_url
from keel.store.migrate import VERSION_TABLE, head_revision
from keel.store.schema import metadata

TABLES = {"pipelines", "pipeline_versions", "pipeline_labels", "traces", "spans", "audit_log"}


def test_fresh_database_is_migrated_to_head(fresh_url: str) -> None:
    store = Store.open(fresh_url, migrate=False)
    try:
        assert store.revision() is None
        store.upgrade()
        assert store.revision() == head_revision()
        assert set(sa.inspect(store.engine).get_table_names()) >= TABLES
    finally:
        store.close()


def test_upgrade_is_idempotent(fresh_url: str) -> None:
    first = Store.open(fresh_url)
    first.pipelines.put_version("triage", "a" * 64, {"name": "triage"})
    first.upgrade()
    first.close()
    second = Store.open(fresh_url)
    try:
        assert second.revision() == head_revision()
        assert second.pipelines.latest("triage").version == "a" * 64
    finally:
        second.close()


def test_migrated_schema_matches_metadata(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_sqlite_file_gets_its_directory_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "keel.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        assert path.exists()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        store.close()


def test_in_memory_sqlite_is_one_database() -> None:
    store = Store.open("sqlite://")
    try:
        store.pipelines.put_version("p", "b" * 64, {})
        assert store.pipelines.latest("p").version == "b" * 64
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"],
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/db"])
def test_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Store.open(url)
    assert info.value.code == "database_url_invalid"


def test_unreachable_postgres_is_a_config_error_without_password() -> None:
    with pytest.raises(ConfigError) as info:
        Store.open("postgresql://keel:s3cret@127.0.0.1:1/keel")
    assert info.value.code == "store_unreachable"
    assert "s3cret" not in info.value.message
    assert "KEEL_DATABASE_URL" in info.value.message
