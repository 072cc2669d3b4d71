"""An in-process copy of a SQLite collection for vector search, BM25 and metadata filters.

sqlite-vec stores the vectors and answers KNN queries itself, but its scan costs about a
microsecond per row, FTS5's ``bm25()`` a few per matching row, and a metadata filter a
``json_extract`` per document: too slow for interactive queries past some tens of thousands
of chunks. With the cache on, the SQLite backend searches a snapshot of the collection
instead: an 8-bit coarse pass with exact rescoring (``coarse``), sparse BM25 columns
(``bm25``) and per-key metadata columns (``filter_columns``).

Access control and versions: the rows a caller may see (its ACL sets, the version range, and
a metadata filter's chunks when there is one) form a boolean mask that is applied *inside*
candidate selection, exactly as the SQL filter would be, so a restricted chunk is never a
candidate. The mask for an (ACL sets, version) pair is kept per snapshot.

Snapshots are built off the request path. An ingest in this process builds the new one
before it returns (``warm``); a query that finds its snapshot out of date (another process
ingested, or the process just started) starts a build in the background and is answered by
SQLite itself (sqlite-vec, FTS5, SQL filters) until the build is done. A metadata key is
loaded the same way the first time a filter names it, and reloaded with every later snapshot.
Memory: about 1.3 KiB per chunk for vectors and codes at 256 dimensions, and about 0.3 KiB
per chunk for the keyword index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from keel.retrieval import coarse
from keel.retrieval.bm25 import KeywordIndex
from keel.retrieval.filter_columns import Column, filter_mask
from keel.retrieval.filters import validate

Connect = Callable[[], AbstractContextManager[Connection]]
_MASKS_KEPT = 64
COARSE_FROM = 20_000  # collections with fewer rows are always scored exactly


@dataclass(slots=True)
class Snapshot:
    """One generation (the collection's highest version number) of a collection's rows."""

    generation: int
    ids: np.ndarray  # chunk ids, ascending
    acl: np.ndarray
    added: np.ndarray
    removed: np.ndarray
    matrix: np.ndarray  # unit vectors, C-contiguous float32, one row per id
    keyword: KeywordIndex
    coarse: coarse.CoarseIndex | None = None
    masks: dict[tuple[tuple[int, ...], int], np.ndarray] = field(default_factory=dict)
    columns: dict[str, Column] = field(default_factory=dict)


class VectorCache:
    """Snapshots per collection id, built by one background thread."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._snapshots: dict[int, Snapshot] = {}
        self._pending: dict[tuple[int, str], Future[None]] = {}
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-retrieval-warm")
        self._closing = threading.Event()
        self.builds = 0  # snapshots built so far (read by tests and the benchmark)

    def close(self) -> None:
        """Stop building: a build under way gives up at its next step."""
        self._closing.set()
        self._builder.shutdown(wait=True, cancel_futures=True)

    # snapshots ----------------------------------------------------------------------------

    def warm(self, cid: int) -> Future[None]:
        """Build ``cid``'s snapshot for its current generation unless it is already built."""
        return self._schedule(cid, "")

    def settle(self) -> None:
        """Wait for every build and column load started so far."""
        with self._lock:
            pending = list(self._pending.values())
        for future in pending:
            future.result()

    def ready(self, conn: Connection, cid: int) -> Snapshot | None:
        """The current snapshot, or ``None`` (and a build started) when it is out of date."""
        generation = _generation(conn, cid)
        snapshot = self._snapshots.get(cid)
        if snapshot is not None and snapshot.generation == generation:
            return snapshot
        self._schedule(cid, "")
        return None

    def _schedule(self, cid: int, key: str) -> Future[None]:
        with self._lock:
            pending = self._pending.get((cid, key))
            if pending is not None and not pending.done():
                return pending
            job = self._build if not key else self._load_column
            future = self._builder.submit(job, cid, key)
            self._pending[(cid, key)] = future
            return future

    def _build(self, cid: int, _key: str) -> None:
        with self._connect() as conn:
            for _ in range(3):  # a write racing the reads: read again
                generation = _generation(conn, cid)
                old = self._snapshots.get(cid)
                if old is not None and old.generation == generation:
                    return
                snapshot = _read(conn, cid, generation, self._closing)
                if self._closing.is_set():
                    return
                if snapshot is None or _generation(conn, cid) != generation:
                    continue
                for key in old.columns if old is not None else ():
                    snapshot.columns[key] = _read_column(conn, cid, snapshot, key)
                with self._lock:
                    self._snapshots[cid] = snapshot
                    self.builds += 1
                return

    def _load_column(self, cid: int, key: str) -> None:
        snapshot = self._snapshots.get(cid)
        if snapshot is None or key in snapshot.columns:
            return
        with self._connect() as conn:
            column = _read_column(conn, cid, snapshot, key)
        with self._lock:
            snapshot.columns[key] = column

    # queries ------------------------------------------------------------------------------

    def knn(
        self,
        conn: Connection,
        cid: int,
        vector: np.ndarray,
        k: int,
        acl: Sequence[int],
        v: int,
        filters: Mapping[str, Any] | None = None,
    ) -> list[tuple[int, float]] | None:
        """Exact-score top-k among the rows the caller may see, or ``None`` when the
        snapshot (or a filter's column) is not built yet: the caller asks SQLite."""
        snapshot = self.ready(conn, cid)
        allowed = None if snapshot is None else self._admitted(snapshot, cid, acl, v, filters)
        if snapshot is None or allowed is None:
            return None
        best, scores = coarse.top(snapshot.matrix, vector, k, allowed, snapshot.coarse)
        distances = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * scores))  # L2 of unit vectors
        return [(int(i), float(d)) for i, d in zip(snapshot.ids[best], distances, strict=True)]

    def keyword(
        self,
        conn: Connection,
        cid: int,
        words: Sequence[str],
        k: int,
        acl: Sequence[int],
        v: int,
        filters: Mapping[str, Any] | None = None,
    ) -> list[tuple[int, float]] | None:
        """BM25 top-k among the rows the caller may see, or ``None`` (see ``knn``)."""
        snapshot = self.ready(conn, cid)
        allowed = None if snapshot is None else self._admitted(snapshot, cid, acl, v, filters)
        if snapshot is None or allowed is None:
            return None
        scores = snapshot.keyword.scores(words)
        if scores is None:
            return []
        matched = np.flatnonzero((scores > 0) & allowed)
        best = matched[coarse.best_first(scores[matched], k)]
        return [(int(snapshot.ids[i]), float(scores[i])) for i in best]

    def _admitted(
        self,
        snapshot: Snapshot,
        cid: int,
        acl: Sequence[int],
        v: int,
        filters: Mapping[str, Any] | None,
    ) -> np.ndarray | None:
        """Positions the caller may see, as a mask: ACL sets, version, metadata filter."""
        mask = self._visible(snapshot, acl, v)
        if not filters:
            return mask
        matching = filter_mask(snapshot.columns, filters)
        if matching is None:
            for key in validate(filters):
                if key not in snapshot.columns:
                    self._schedule(cid, key)
            return None
        admitted: np.ndarray = mask & matching
        return admitted

    def _visible(self, snapshot: Snapshot, acl: Sequence[int], v: int) -> np.ndarray:
        key = (tuple(sorted(set(acl))), v)
        mask = snapshot.masks.get(key)
        if mask is None:
            # a lookup table over ACL ids; ids past the largest allowed one hit the last
            # slot, which stays False
            lookup = np.zeros(max(key[0], default=0) + 2, dtype=bool)
            lookup[[a for a in key[0] if a >= 0]] = True
            allowed = lookup[np.clip(snapshot.acl, 0, len(lookup) - 1)]
            mask = allowed & (snapshot.added <= v) & (snapshot.removed > v)
            with self._lock:
                if len(snapshot.masks) >= _MASKS_KEPT:
                    snapshot.masks.pop(next(iter(snapshot.masks)))
                snapshot.masks[key] = mask
        return mask


def _generation(conn: Connection, cid: int) -> int:
    return int(
        conn.exec_driver_sql(
            "SELECT coalesce(max(version), 0) FROM retrieval_versions WHERE collection_id = ?",
            (cid,),
        ).scalar_one()
    )


def _read(conn: Connection, cid: int, generation: int, closing: threading.Event) -> Snapshot | None:
    """Vectors and keyword index of every row; ``None`` when the two reads disagree or the
    cache is closing."""
    rows = conn.exec_driver_sql(
        f"SELECT rowid, acl_id, added, removed, embedding FROM retrieval_vec_{cid}"  # noqa: S608
    ).all()
    texts = conn.exec_driver_sql(
        "SELECT id, heading, text FROM retrieval_chunks WHERE collection_id = ? ORDER BY id",
        (cid,),
    ).all()
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    if closing.is_set() or not np.array_equal(
        ids[order], np.asarray([r[0] for r in texts], dtype=np.int64)
    ):
        return None
    dim = len(rows[0][4]) // 4 if rows else 0
    matrix = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    matrix = np.ascontiguousarray(matrix[order])
    keyword = KeywordIndex.build([f"{r[1]}\n{r[2]}" if r[1] else r[2] for r in texts])
    return Snapshot(
        generation,
        ids[order],
        np.asarray([r[1] for r in rows], dtype=np.int64)[order],
        np.asarray([r[2] for r in rows], dtype=np.int64)[order],
        np.asarray([r[3] for r in rows], dtype=np.int64)[order],
        matrix,
        keyword,
        coarse.CoarseIndex(matrix) if len(rows) >= COARSE_FROM else None,
    )


def _read_column(conn: Connection, cid: int, snapshot: Snapshot, key: str) -> Column:
    """Every chunk's value for metadata ``key``, as SQLite's ``json_extract`` reads it."""
    rows = conn.exec_driver_sql(
        "SELECT c.id, json_extract(d.meta, ?) FROM retrieval_chunks AS c "
        "JOIN retrieval_documents AS d ON d.id = c.document_id WHERE c.collection_id = ?",
        (f'$."{key}"', cid),
    ).all()
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    positions = np.searchsorted(snapshot.ids, ids)
    positions = np.minimum(positions, max(len(snapshot.ids) - 1, 0))
    known = snapshot.ids[positions] == ids if len(snapshot.ids) else np.zeros(len(ids), bool)
    values = [r[1] for r, kept in zip(rows, known, strict=True) if kept]
    return Column.build(positions[known], values, len(snapshot.ids))
