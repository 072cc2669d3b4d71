"""The SQLite collection cache: snapshots built off the request path, queries answered by
SQLite while one is built, and metadata filters evaluated in process exactly as in SQL."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from keel.retrieval import vector_cache
from keel.retrieval.embedders import EmbedderRegistry
from keel.retrieval.search import SearchRequest
from keel.retrieval.service import RetrievalConfig, RetrievalService
from keel.retrieval.vector_cache import VectorCache

from .conftest import SALARY_SECRET

pytestmark = pytest.mark.anyio


def open_service(db: Path, embedders: EmbedderRegistry, cache: bool = True) -> RetrievalService:
    svc = RetrievalService(
        RetrievalConfig(f"sqlite:///{db}", chunk_tokens=64, chunk_overlap=8, vector_cache=cache)
    )
    svc.embedders = embedders
    return svc


def cache_of(service: RetrievalService) -> VectorCache:
    cache = getattr(service.index.backend, "cache", None)
    assert isinstance(cache, VectorCache)
    return cache


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


async def test_an_ingest_builds_the_snapshot_before_it_returns(
    tmp_path: Path, embedders: EmbedderRegistry
) -> None:
    service = open_service(tmp_path / "r.db", embedders)
    try:
        records = [{"id": i, "text": f"Invoice {i} was paid by bank transfer."} for i in range(30)]
        await service.ingest("kb", write_records(tmp_path / "a.jsonl", records))
        cache = cache_of(service)
        assert cache.builds == 1
        with service.index.engine.connect() as conn:
            cid = service.index.collection("kb", conn).id
            assert cache.ready(conn, cid) is not None
        result = await service.search(SearchRequest("kb", "invoice paid", top_k=3))
        assert len(result.hits) == 3
        cache.settle()
        assert cache.builds == 1  # the query built nothing
    finally:
        service.close()


async def test_a_first_ingest_that_stores_nothing_has_nothing_to_build(
    tmp_path: Path, embedders: EmbedderRegistry
) -> None:
    service = open_service(tmp_path / "r.db", embedders)
    try:
        folder = tmp_path / "docs"
        folder.mkdir()
        (folder / "notes.xyz").write_text("an unsupported file")
        report = await service.ingest("kb", folder)
        assert report.chunks_embedded == 0 and len(report.skipped) == 1
        assert cache_of(service).builds == 0
        assert (await service.search(SearchRequest("kb", "anything"))).hits == []
    finally:
        service.close()


async def test_a_stale_snapshot_is_rebuilt_in_the_background_while_sqlite_answers(
    tmp_path: Path, embedders: EmbedderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process ingests; this one's next query is answered at once and correctly
    (by SQLite) while its snapshot is rebuilt, which is held up here until released."""
    db = tmp_path / "r.db"
    reader, writer = open_service(db, embedders), open_service(db, embedders)
    try:
        public = [{"id": i, "text": f"Refunds reach card {i} in five days."} for i in range(20)]
        await reader.ingest("kb", write_records(tmp_path / "a.jsonl", public))
        release = threading.Event()
        building = threading.Event()
        original = vector_cache._read

        def held_read(*args: Any) -> Any:
            building.set()
            release.wait(30)
            return original(*args)

        monkeypatch.setattr(vector_cache, "_read", held_read)
        later = [
            {"id": "glacier", "text": "Glaciers carve fjords over thousands of years."},
            {"id": "secret", "text": SALARY_SECRET, "groups": ["hr"]},
        ]
        added = write_records(tmp_path / "c.jsonl", later)
        await writer.ingest("kb2", tmp_path / "a.jsonl", warm=False)  # another collection
        await writer.ingest("kb", [tmp_path / "a.jsonl", added], warm=False)
        cache = cache_of(reader)
        builds = cache.builds
        found = await reader.search(SearchRequest("kb", "glaciers carve fjords", top_k=1))
        assert found.hits[0].source.endswith("#glacier")  # the new version, from SQLite
        outsider = await reader.search(
            SearchRequest("kb", "chief executive base salary 2025", top_k=50, candidates=200)
        )
        assert all("742,000" not in h.text for h in outsider.hits)
        assert building.wait(30)  # the rebuild started, and is held
        assert cache.builds == builds
        release.set()
        cache.settle()
        assert cache.builds == builds + 1
        with reader.index.engine.connect() as conn:
            snapshot = cache.ready(conn, reader.index.collection("kb", conn).id)
        assert snapshot is not None and len(snapshot.ids) == 22
        again = await reader.search(SearchRequest("kb", "glaciers carve fjords", top_k=1))
        assert again.hits[0].source.endswith("#glacier")
    finally:
        release.set()
        reader.close()
        writer.close()


FILTERS: list[dict[str, Any]] = [
    {"team": "rare"},
    {"team": ["rare", "billing"]},
    {"tier": 1},
    {"tier": 1.0},  # 1.0 equals 1 in SQLite
    {"tier": "1"},  # a string never equals a number
    {"tier": [0, 2], "team": "billing"},
    {"flag": True},  # JSON true reads as 1
    {"flag": 0},
    {"flag": None},  # null and a missing key
    {"team": None},
    {"score": 0.5},
    {"nested": '{"a":1}'},  # an object reads as its JSON text
    {"team": "nobody"},
    {"absent": "x"},
]


@pytest.mark.parametrize("mode", ["vector", "keyword"])
async def test_in_process_filters_select_what_sql_selects(
    tmp_path: Path, embedders: EmbedderRegistry, mode: Any
) -> None:
    records: list[dict[str, Any]] = []
    for i in range(60):
        record: dict[str, Any] = {"id": i, "text": f"Refund invoice number {i} for the card."}
        record |= {"team": ["billing", "rare", None][i % 3], "tier": [0, 1, 1.0, 2, "1"][i % 5]}
        if i % 4:
            record["flag"] = [True, False, None][i % 3]
        if i % 7 == 0:
            record |= {"score": 0.5, "nested": {"a": 1}}
        if i % 11 == 0:
            del record["team"]
        records.append(record)
    path = write_records(tmp_path / "m.jsonl", records)
    cached = open_service(tmp_path / "r.db", embedders)
    plain = open_service(tmp_path / "r.db", embedders, cache=False)
    try:
        await cached.ingest("kb", path)
        for filters in FILTERS:  # the first use of a key loads its column in the background
            await cached.search(SearchRequest("kb", "refund invoice", filters=filters))
        cache_of(cached).settle()
        for filters in FILTERS:
            request = SearchRequest(
                "kb", "refund invoice card", top_k=100, candidates=100, mode=mode, filters=filters
            )
            got = {h.source for h in (await cached.search(request)).hits}
            want = {h.source for h in (await plain.search(request)).hits}
            assert got == want, filters
        with cached.index.engine.connect() as conn:
            snapshot = cache_of(cached).ready(conn, cached.index.collection("kb", conn).id)
        assert snapshot is not None and set(snapshot.columns) >= {"team", "tier", "flag"}
    finally:
        cached.close()
        plain.close()
