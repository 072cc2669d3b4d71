"""Lineage: which sources an index version holds, which answers cited a document, and
which documents changed on disk since they were ingested (freshness)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from keel.core.errors import NotFoundError
from keel.retrieval.index import RetrievalIndex
from keel.retrieval.tables import citations, documents, versions
from keel.retrieval.types import Hit


def record_citations(
    index: RetrievalIndex, trace_id: str, collection: str, version: int, hits: Sequence[Hit]
) -> None:
    if not hits:
        return
    found = index.collection(collection)
    now = dt.datetime.now(dt.UTC)
    with index.engine.begin() as conn:
        conn.execute(
            citations.insert(),
            [
                {
                    "trace_id": trace_id,
                    "collection_id": found.id,
                    "version": version,
                    "document_id": h.document_id,
                    "chunk_id": h.chunk_id,
                    "rank": n,
                    "at": now,
                }
                for n, h in enumerate(hits, 1)
            ],
        )


def version_sources(
    index: RetrievalIndex, collection: str, version: int | None = None
) -> dict[str, Any]:
    """Every document an index version serves, with its content hash, and the embedder."""
    found = index.collection(collection)
    v = found.current_version if version is None else version
    with index.engine.connect() as conn:
        row = conn.execute(
            sa.select(versions.c.embedder, versions.c.state).where(
                versions.c.collection_id == found.id, versions.c.version == v
            )
        ).first()
        if row is None:
            raise NotFoundError(
                f"collection {collection!r} has no version {v}", code="index_version_not_found"
            )
        docs = conn.execute(
            sa.select(
                documents.c.id, documents.c.source, documents.c.content_hash, documents.c.groups
            )
            .where(
                documents.c.collection_id == found.id,
                documents.c.added_version <= v,
                documents.c.removed_version > v,
            )
            .order_by(documents.c.source)
        ).all()
    return {
        "collection": collection,
        "version": v,
        "embedder": row.embedder,
        "state": row.state,
        "documents": [
            {"id": d.id, "source": d.source, "content_hash": d.content_hash, "groups": d.groups}
            for d in docs
        ],
    }


def citing_traces(index: RetrievalIndex, collection: str, source: str) -> list[dict[str, Any]]:
    """The runs (trace ids) whose answers cited any version of the document at ``source``."""
    found = index.collection(collection)
    with index.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                citations.c.trace_id,
                citations.c.version,
                citations.c.chunk_id,
                citations.c.rank,
                citations.c.at,
                documents.c.content_hash,
            )
            .join(documents, documents.c.id == citations.c.document_id)
            .where(documents.c.collection_id == found.id, documents.c.source == source)
            .order_by(citations.c.at, citations.c.rank)
        ).all()
    return [
        {
            "trace_id": r.trace_id,
            "version": r.version,
            "chunk_id": r.chunk_id,
            "rank": r.rank,
            "at": r.at.isoformat() if r.at else None,
            "content_hash": r.content_hash,
        }
        for r in rows
    ]


def freshness(index: RetrievalIndex, collection: str) -> dict[str, list[str]]:
    """Documents whose source changed or vanished since the current version ingested them,
    and new files under the roots that version was built from (by modification time)."""
    from keel.retrieval.loaders import SUPPORTED, discover

    found = index.collection(collection)
    with index.engine.connect() as conn:
        root = conn.execute(
            sa.select(versions.c.root).where(
                versions.c.collection_id == found.id, versions.c.version == found.current_version
            )
        ).scalar()
    live = index.live_documents(found)
    known: dict[str, float | None] = {}
    for row in live:
        path = row.source.split("#", 1)[0]
        known[path] = max(known.get(path) or 0.0, row.modified_at or 0.0)
    report: dict[str, list[str]] = {"changed": [], "missing": [], "new": []}
    for path, ingested in sorted(known.items()):
        try:
            mtime = Path(path).stat().st_mtime
        except OSError:
            report["missing"].append(path)
            continue
        if ingested is not None and mtime > ingested:
            report["changed"].append(path)
    for one in (root or "").split("\n"):
        base = Path(one)
        if one and base.exists():
            for file in discover(base):
                if file.suffix.lower() in SUPPORTED and str(file) not in known:
                    report["new"].append(str(file))
    return report
