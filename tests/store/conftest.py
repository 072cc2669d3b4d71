"""Store fixtures: every store test runs on SQLite and on the machine's PostgreSQL.

The Postgres side creates one fresh database ``keel_test_<hex>`` per session on the server at
``KEEL_TEST_POSTGRES_URL`` (default: the local ``postgres`` database as user ``postgres``) and
drops it at the end. When that server cannot be reached, the Postgres cases are skipped with
the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from keel.store import Store
from keel.store.engine import describe, parse_url

POSTGRES_URL = os.environ.get(
    "KEEL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_TABLES = (
    "spans, traces, pipeline_labels, pipeline_versions, pipelines, audit_log, "
    "eval_results, eval_runs, dataset_items, datasets, alerts, usage_hourly, "
    "feedback, feedback_queue, review_samples, online_scores"
)


class PostgresServer:
    """Creates throwaway databases on the test server and drops them all at the end."""

    def __init__(self, admin: Engine, base: URL) -> None:
        self._admin = admin
        self._base = base
        self._created: list[str] = []

    def create_database(self) -> str:
        name = f"keel_test_{secrets.token_hex(6)}"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return self._base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin.connect() as conn:
            for name in self._created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    base = parse_url(POSTGRES_URL)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = str(exc.orig or exc).strip().splitlines()[0]
        pytest.skip(f"PostgreSQL not reachable at {describe(base)}: {reason}")
    server = PostgresServer(admin, base)
    try:
        yield server
    finally:
        server.drop_all()
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_session_url(postgres_server: PostgresServer) -> str:
    """One migrated database shared by the session; tests empty it when they finish."""
    url = postgres_server.create_database()
    Store.open(url).close()
    return url


BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a database nothing has touched yet."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'keel.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@contextmanager
def backend_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, tables: str
) -> Iterator[Store]:
    """A migrated store on ``backend``: a new SQLite file, or the session's Postgres database
    with ``tables`` emptied when the test is done."""
    if backend == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'keel.db'}")
        try:
            yield opened
        finally:
            opened.close()
        return
    opened = Store.open(request.getfixturevalue("postgres_session_url"))
    try:
        yield opened
    finally:
        with opened.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        opened.close()


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    with backend_store(backend, tmp_path, request, _TABLES) as opened:
        yield opened


@pytest.fixture
def make_store() -> Iterator[Callable[[str], Store]]:
    """Open stores by URL and close them all at teardown."""
    opened: list[Store] = []

    def make(url: str) -> Store:
        opened.append(Store.open(url))
        return opened[-1]

    yield make
    for each in opened:
        each.close()
