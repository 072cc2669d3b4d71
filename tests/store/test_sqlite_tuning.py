"""A SQLite store's connections and memory are bounded by its tuning."""

from __future__ import annotations

from pathlib import Path

from keel.store import Store
from keel.store.engine import SQLiteTuning


def test_each_connection_gets_the_cache_size_and_heap_limit(tmp_path: Path) -> None:
    tuning = SQLiteTuning(pool_size=2, cache_kib=512, memory_limit_mb=6)
    store = Store.open(f"sqlite:///{tmp_path / 'keel.db'}", sqlite=tuning)
    try:
        with store.engine.connect() as conn:
            cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            limit = conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar()
        assert cache == -512
        assert limit == 6 * 2**20
    finally:
        store.close()


def test_connections_beyond_the_pool_close_when_returned(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'keel.db'}", sqlite=SQLiteTuning(pool_size=2))
    try:
        burst = [store.engine.connect() for _ in range(5)]
        for conn in burst:
            conn.exec_driver_sql("SELECT 1")
        for conn in burst:
            conn.close()
        # A burst of five leaves the pool's two open, not five.
        assert store.engine.pool.checkedin() == 2  # type: ignore[attr-defined]
    finally:
        store.close()


def test_the_runtime_opens_its_store_with_the_sqlite_settings(tmp_path: Path) -> None:
    from keel.runtime import open_store
    from keel.settings import KeelSettings

    settings = KeelSettings(home=tmp_path, sqlite={"cache_kib": 256, "memory_limit_mb": 0})
    store = open_store(settings)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -256
            assert conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar() == 0
    finally:
        store.close()
