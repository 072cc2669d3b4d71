"""Concurrent ingests into one collection run one at a time, on SQLite and on Postgres.

Two real processes ingest into the same collection at the same moment: both succeed, one
after the other, and the index holds what both brought. Two threads ingesting the same
folder: the second plans against the version the first wrote, so it embeds nothing. A
writer that cannot get the lock in time fails with ``collection_busy`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from keel.core.errors import ConflictError
from keel.retrieval.service import RetrievalConfig, RetrievalService

pytestmark = pytest.mark.integration


WORDS = [a + b + c for a in "bdfgklmnprst" for b in "aeiou" for c in "nrstl"]


def _write_folder(root: Path, prefix: str, files: int) -> Path:
    """Markdown files of random words: distinct enough that none is a near duplicate."""
    rng = random.Random(prefix)
    root.mkdir(parents=True)
    for n in range(files):
        body = " ".join(rng.choice(WORDS) for _ in range(300))
        (root / f"{prefix}-{n}.md").write_text(f"# {prefix} {n}\n\n{body}\n")
    return root


def _ingest_in_process(url: str, folder: str, ready: Any, start: Any, out: str) -> None:
    """Runs in a child process: load everything, wait for the start signal, ingest."""
    service = RetrievalService(RetrievalConfig(url, chunk_tokens=64, chunk_overlap=8))
    service.ingestor()  # loads the embedder before the race starts
    ready.set()
    start.wait(60)
    report = asyncio.run(service.ingest("kb", Path(folder)))
    Path(out).write_text(json.dumps(report.to_dict()))
    service.close()


def test_two_processes_ingesting_one_collection_both_land(
    request: pytest.FixtureRequest, index_url: str, tmp_path: Path
) -> None:
    if request.node.callspec.params["index_url"] == "sqlite-vec":
        pytest.skip("the same SQLite store as the sqlite case; the cache plays no part")
    folders = [_write_folder(tmp_path / name, name, 30) for name in ("alpha", "beta")]
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    readies, children = [], []
    for n, folder in enumerate(folders):
        ready = spawn.Event()
        out = str(tmp_path / f"report-{n}.json")
        child = spawn.Process(
            target=_ingest_in_process, args=(index_url, str(folder), ready, start, out)
        )
        child.start()
        readies.append(ready)
        children.append(child)
    for ready in readies:
        assert ready.wait(120), "a child did not start"
    start.set()
    for child in children:
        child.join(180)
        assert child.exitcode == 0
    reports = [json.loads((tmp_path / f"report-{n}.json").read_text()) for n in range(2)]
    assert sorted(r["version"] for r in reports) == [1, 2]
    assert all(r["documents_added"] == 30 for r in reports)

    service = RetrievalService(RetrievalConfig(index_url))
    try:
        found = service.index.collection("kb")
        assert found.current_version == 2
        assert service.index.counts(found)["documents"] == 60
        assert [v["version"] for v in service.index.versions("kb")] == [1, 2]
    finally:
        service.close()


@pytest.mark.anyio
async def test_two_threads_ingesting_the_same_folder_embed_it_once(
    index_url: str, tmp_path: Path
) -> None:
    folder = _write_folder(tmp_path / "docs", "gamma", 25)
    services = [
        RetrievalService(RetrievalConfig(index_url, chunk_tokens=64, chunk_overlap=8))
        for _ in range(2)
    ]
    try:
        for service in services:
            service.ingestor()
        reports = await asyncio.gather(*(s.ingest("kb", folder) for s in services))
        embedded = sorted(r.chunks_embedded for r in reports)
        assert embedded[0] == 0 and embedded[1] > 0
        assert sorted(r.version for r in reports) == [1, 2]
        found = services[0].index.collection("kb")
        assert services[0].index.counts(found)["chunks"] == embedded[1]
    finally:
        for service in services:
            service.close()


@pytest.mark.anyio
async def test_a_writer_that_waits_too_long_fails_clearly(index_url: str, tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "docs", "delta", 3)
    config = RetrievalConfig(index_url, chunk_tokens=64, chunk_overlap=8, ingest_lock_timeout=0.5)
    holder, waiter = RetrievalService(config), RetrievalService(config)
    try:
        await waiter.ingest("kb", folder)
        held = holder.index.acquire_writer("kb")  # another writer, through its own connection
        try:
            with pytest.raises(ConflictError) as info:
                await waiter.ingest("kb", folder)
            assert info.value.code == "collection_busy"
            assert "kb" in info.value.message and "ingest_lock_timeout" in info.value.message
            with pytest.raises(ConflictError):
                await asyncio.to_thread(waiter.index.rollback, "kb", 1)
        finally:
            held.release()
        assert [v["version"] for v in waiter.index.versions("kb")] == [1]
        again = await waiter.ingest("kb", folder)  # the lock is free again
        assert again.version == 2 and again.chunks_embedded == 0
    finally:
        holder.close()
        waiter.close()


def test_a_lock_held_by_a_thread_is_released_for_the_next(index_url: str) -> None:
    service = RetrievalService(RetrievalConfig(index_url, ingest_lock_timeout=5))
    order: list[str] = []
    try:
        first = service.index.acquire_writer("kb")

        def second() -> None:
            with service.index.writer("kb"):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.3)
        order.append("first")
        first.release()
        thread.join(10)
        assert order == ["first", "second"]
    finally:
        service.close()
