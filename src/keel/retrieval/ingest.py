"""Ingestion: read, clean, sanitize, de-duplicate, chunk, embed and write one index version.

Incremental by content hash: a document whose hash (of its cleaned text, groups and
metadata) is unchanged is not touched; a changed one has its old chunks removed and new ones
embedded; a document that was ingested from the same root before and is gone now leaves
the index. Files that fail to read are reported and keep their previous version.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from keel.core.errors import InvalidInputError
from keel.retrieval.chunking import Chunker
from keel.retrieval.cleaning import Deduper, clean_text, content_hash, normalized_hash, simhash
from keel.retrieval.embedders import Embedder
from keel.retrieval.index import Change, Collection, NewDocument, RetrievalIndex
from keel.retrieval.loaders import discover, read_file
from keel.retrieval.sanitize import Sanitizer
from keel.retrieval.types import Skipped, SourceDocument

log = logging.getLogger("keel.retrieval")
Progress = Callable[[int, int], None]  # (done, total) chunks embedded
EMBED_BATCH = 256


@dataclass(slots=True)
class IngestReport:
    collection: str
    version: int
    embedder: str
    documents_added: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_removed: int = 0
    chunks_embedded: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "version": self.version,
            "embedder": self.embedder,
            "documents_added": self.documents_added,
            "documents_changed": self.documents_changed,
            "documents_unchanged": self.documents_unchanged,
            "documents_removed": self.documents_removed,
            "chunks_embedded": self.chunks_embedded,
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
            "duplicates": [{"source": s.source, "reason": s.reason} for s in self.duplicates],
            "seconds": round(self.seconds, 3),
        }


@dataclass(slots=True)
class _Plan:
    added: list[NewDocument] = field(default_factory=list)
    removed: dict[int, tuple[str, str]] = field(default_factory=dict)
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0


def read_sources(
    path: Path, groups: Sequence[str]
) -> tuple[Path, list[SourceDocument], list[Skipped]]:
    root = path.resolve()
    if not root.exists():
        raise InvalidInputError(f"{path} does not exist", code="ingest_path_missing")
    docs: list[SourceDocument] = []
    skipped: list[Skipped] = []
    for file in discover(root):
        for item in read_file(file, groups):
            if isinstance(item, Skipped):
                skipped.append(item)
            else:
                docs.append(item)
    return root, docs, skipped


def _in_scope(source: str, root: Path) -> bool:
    base = str(root)
    if root.is_file() or not root.exists():
        return source == base or source.startswith(base + "#")
    return source.startswith(base.rstrip(os.sep) + os.sep)


class Ingestor:
    def __init__(
        self,
        index: RetrievalIndex,
        embedder: Embedder,
        chunker: Chunker,
        sanitizer: Sanitizer | None = None,
        *,
        warm: bool = True,
    ) -> None:
        self._index = index
        self._embedder = embedder
        self._chunker = chunker
        self._sanitizer = sanitizer
        self._warm = warm  # prepare the new version for queries before returning

    async def ingest_path(
        self,
        collection: str,
        path: Path | Sequence[Path],
        groups: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files and folders as one index version (documents gone from them leave)."""
        paths = [path] if isinstance(path, Path) else list(path)
        roots: list[Path] = []
        docs: list[SourceDocument] = []
        skipped: list[Skipped] = []
        for one in paths:
            root, found, failed = await asyncio.to_thread(read_sources, one, groups)
            roots.append(root)
            docs += found
            skipped += failed
        return await self.ingest(collection, docs, roots=roots, skipped=skipped, progress=progress)

    async def ingest(
        self,
        collection: str,
        docs: Sequence[SourceDocument],
        *,
        roots: Sequence[Path],
        skipped: Sequence[Skipped] = (),
        progress: Progress | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        # one writer per collection: a concurrent ingest waits here, then plans against
        # the version this one writes
        held = await asyncio.to_thread(self._index.acquire_writer, collection)
        try:
            report = await self._ingest_locked(collection, docs, roots, skipped, progress, started)
        finally:
            await asyncio.to_thread(held.release)
        if self._warm:  # so that the first query after an ingest does not build anything
            try:
                await asyncio.to_thread(self._index.warm, collection)
            except Exception:  # the version is written; queries build or fall back instead
                log.warning(
                    "could not prepare %s for queries after its ingest", collection, exc_info=True
                )
        return report

    async def _ingest_locked(
        self,
        collection: str,
        docs: Sequence[SourceDocument],
        roots: Sequence[Path],
        skipped: Sequence[Skipped],
        progress: Progress | None,
        started: float,
    ) -> IngestReport:
        found = self._index.ensure_collection(collection, self._embedder.id)
        self._index.discard_future(found)
        found = self._index.collection(collection)
        report = IngestReport(collection, 0, self._embedder.id, skipped=list(skipped))
        plan = self._plan(found, docs, roots, report)
        total = sum(len(d.chunks) for d in plan.added)
        await self._embed(plan.added, total, progress)
        stats = {
            "added": len(plan.added) - plan.changed,
            "changed": plan.changed,
            "unchanged": plan.unchanged,
            "removed": plan.deleted,
            "chunks_embedded": total,
            "skipped": len(report.skipped),
            "duplicates": len(report.duplicates),
        }
        change = Change(plan.added, plan.removed, stats, "\n".join(map(str, roots)))
        report.version = self._index.commit(found, change, self._embedder.id)
        report.documents_added = stats["added"]
        report.documents_changed = plan.changed
        report.documents_unchanged = plan.unchanged
        report.documents_removed = plan.deleted
        report.chunks_embedded = total
        report.seconds = time.perf_counter() - started
        return report

    def _plan(
        self,
        found: Collection,
        docs: Sequence[SourceDocument],
        roots: Sequence[Path],
        report: IngestReport,
    ) -> _Plan:
        live = {row.source: row for row in self._index.live_documents(found)}
        plan = _Plan()
        seen: set[str] = set()
        pending: list[tuple[SourceDocument, str, str]] = []
        for doc in docs:
            text = clean_text(doc.text)
            if self._sanitizer is not None:
                text = self._sanitizer.sanitize(text)
            digest = content_hash(
                text,
                "\n".join(sorted(doc.groups)),
                orjson.dumps(doc.metadata, option=orjson.OPT_SORT_KEYS).decode(),
            )
            seen.add(doc.source)
            old = live.get(doc.source)
            if old is not None and old.content_hash == digest:
                plan.unchanged += 1
                continue
            pending.append((doc, text, digest))
        failed = {s.source.split(":", 1)[0] for s in report.skipped}
        for source, row in live.items():
            in_scope = any(_in_scope(source, root) for root in roots)
            if in_scope and source not in seen and source not in failed:
                plan.removed[row.id] = (source, row.content_hash)
                plan.deleted += 1
        deduper = Deduper()
        replaced = {live[d.source].id for d, _, _ in pending if d.source in live}
        for row in live.values():
            if row.id not in plan.removed and row.id not in replaced:
                deduper.add(row.source, "", exact=row.exact_hash, near=row.simhash)
        for doc, text, digest in pending:
            self._admit(doc, text, digest, live, deduper, plan, report)
        return plan

    def _admit(
        self,
        doc: SourceDocument,
        text: str,
        digest: str,
        live: dict[str, Any],
        deduper: Deduper,
        plan: _Plan,
        report: IngestReport,
    ) -> None:
        old = live.get(doc.source)
        if old is not None:  # changed: the old version leaves whether or not the new one stays
            plan.removed[old.id] = (doc.source, old.content_hash)
            plan.changed += 1
        exact, near = normalized_hash(text), simhash(text)
        duplicate = deduper.duplicate_of(text, exact, near)
        if duplicate is not None:
            kind, of = duplicate
            report.duplicates.append(Skipped(doc.source, f"{kind} duplicate of {of}"))
            return
        deduper.add(doc.source, text, exact=exact, near=near)
        pieces = self._chunker.chunks(text, markdown=doc.markdown)
        modified = _mtime(doc.source)
        plan.added.append(
            NewDocument(
                doc.source,
                digest,
                exact,
                near,
                doc.groups,
                doc.metadata,
                modified,
                [(c.heading, c.text, c.tokens) for c in pieces],
            )
        )

    async def _embed(self, added: list[NewDocument], total: int, progress: Progress | None) -> None:
        texts: list[str] = []
        owners: list[NewDocument] = []
        for doc in added:
            for heading, text, _ in doc.chunks:
                texts.append(f"{heading}\n{text}" if heading else text)
                owners.append(doc)
        vectors: list[np.ndarray] = []
        done = 0
        if progress:
            progress(0, total)
        for start in range(0, len(texts), EMBED_BATCH):
            batch = await self._embedder.embed(texts[start : start + EMBED_BATCH])
            vectors.append(batch)
            done += len(batch)
            if progress:
                progress(done, total)
        if not texts:
            return
        matrix = np.concatenate(vectors)
        position = 0
        for doc in added:
            doc.vectors = matrix[position : position + len(doc.chunks)]
            position += len(doc.chunks)


def _mtime(source: str) -> float | None:
    try:
        return os.stat(source.split("#", 1)[0]).st_mtime
    except OSError:
        return None
