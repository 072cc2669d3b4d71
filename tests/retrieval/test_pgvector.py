"""Postgres: the HNSW index is built on centered vectors after the first ingest, queries walk
it, and its ranking is cosine similarity's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from keel.retrieval.embedders import EmbedderRegistry
from keel.retrieval.pgvector_backend import PostgresBackend
from keel.retrieval.service import RetrievalConfig, RetrievalService

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

WORDS = [
    "refund",
    "invoice",
    "card",
    "bank",
    "glacier",
    "fjord",
    "tundra",
    "volcano",
    "salary",
    "bonus",
    "budget",
    "ledger",
]


@pytest.fixture
def pg_service(pgvector_url: str, embedders: EmbedderRegistry) -> Iterator[RetrievalService]:
    name = f"keel_pgvector_{abs(hash(pgvector_url + str(id(embedders)))) % 10**9}"
    admin = sa.create_engine(pgvector_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = sa.make_url(pgvector_url).set(database=name).render_as_string(hide_password=False)
    service = RetrievalService(RetrievalConfig(url))
    service.embedders = embedders
    try:
        yield service
    finally:
        service.close()


async def test_queries_walk_the_centered_index_and_rank_by_cosine(
    pg_service: RetrievalService, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    lines = [
        {"id": i, "text": " ".join(rng.choice(WORDS, 8)), "groups": ["staff"] if i % 4 else []}
        for i in range(300)
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    await pg_service.ingest("kb", path)
    index = pg_service.index
    backend = index.backend
    assert isinstance(backend, PostgresBackend)
    found = index.collection("kb")
    with index.engine.begin() as conn:
        definition = conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            (f"retrieval_vec_{found.id}_hnsw",),
        ).scalar_one()
        assert "vector_ip_ops" in definition and "embedding -" in definition
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a small table; show the index fits
        query = (await pg_service.embedders.get(found.embedder).embed(["refund glacier"]))[0]
        acl = index.allowed_acls(conn, ())
        expression = backend.indexed_expression(conn, found.id)
        plan = conn.exec_driver_sql(
            f"EXPLAIN SELECT chunk_id FROM retrieval_vec_{found.id} "  # noqa: S608
            f"ORDER BY ({expression}) <#> %s::vector LIMIT 10",
            ("[" + ",".join(map(str, query)) + "]",),
        ).all()
        assert any(f"retrieval_vec_{found.id}_hnsw" in row[0] for row in plan)
        got = backend.knn(conn, found.id, query, 10, acl, found.current_version)
        vectors = backend.vectors(conn, found.id, [i for i, _ in got])
        everything = conn.exec_driver_sql(
            f"SELECT chunk_id, 1 - (embedding <=> %s::vector) FROM retrieval_vec_{found.id} "  # noqa: S608
            "WHERE acl_id = ANY(%s) ORDER BY 2 DESC LIMIT 10",
            ("[" + ",".join(map(str, query)) + "]", acl),
        ).all()
    assert {i for i, _ in got} == {int(r[0]) for r in everything}  # exact at this size
    distances = [d for _, d in got]
    assert distances == sorted(distances)
    for chunk_id, distance in got:  # distances are cosine distances
        assert distance == pytest.approx(1 - float(vectors[chunk_id] @ query), abs=1e-4)
