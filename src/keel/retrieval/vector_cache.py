"""An in-process copy of a SQLite collection for exact vector search and BM25 with numpy.

sqlite-vec stores the vectors and answers KNN queries itself, but its scan costs about a
microsecond per row, and FTS5's ``bm25()`` a few per matching row: too slow for interactive
queries past some tens of thousands of chunks. With the cache on, the SQLite backend scans a
float32 matrix (one matrix-vector product) and sums sparse BM25 columns (``bm25``) instead.

Access control and versions: the rows a caller may see (its ACL sets, the version range,
and a metadata filter's chunks when there is one) are computed as positions *before* any
score is ranked, exactly as the SQL filter would, so a restricted chunk is never a
candidate. The positions for an (ACL sets, version) pair are kept per loaded generation.

The copy is loaded on the first query and reloaded whenever the collection gains a version
(every ingest writes one); a rollback needs no reload, since versions are part of the mask.
The keyword index is built on the first keyword query. Memory: 1 KiB per chunk for vectors
at 256 dimensions, and about 0.3 KiB per chunk for the keyword index.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.engine import Connection

from keel.retrieval.bm25 import KeywordIndex

_MASKS_KEPT = 64


@dataclass(slots=True)
class _Entry:
    generation: int
    ids: np.ndarray  # chunk ids, ascending
    acl: np.ndarray
    added: np.ndarray
    removed: np.ndarray
    matrix: np.ndarray  # unit vectors, C-contiguous float32, one row per id
    masks: dict[tuple[tuple[int, ...], int], np.ndarray] = field(default_factory=dict)
    keyword: KeywordIndex | None = None


class VectorCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}

    def knn(
        self,
        conn: Connection,
        cid: int,
        vector: np.ndarray,
        k: int,
        acl: Sequence[int],
        v: int,
        only: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        entry = self._entry(conn, cid)
        rows = self._rows(entry, acl, v, only)
        if not len(rows):
            return []
        query = np.asarray(vector, dtype=np.float32)
        # einsum's own single-threaded loop: a BLAS matrix-vector product fans out to every
        # core and, measured on a busy two-core machine, ran 2-4x slower
        if len(rows) * 4 < len(entry.ids):  # a selective filter: score only its rows
            scores = np.einsum("ij,j->i", entry.matrix[rows], query)
        else:
            scores = np.einsum("ij,j->i", entry.matrix, query)[rows]
        best = _top(scores, k)
        distances = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * scores[best]))  # L2 of unit vectors
        return [(int(entry.ids[rows[i]]), float(d)) for i, d in zip(best, distances, strict=True)]

    def keyword(
        self,
        conn: Connection,
        cid: int,
        words: Sequence[str],
        k: int,
        acl: Sequence[int],
        v: int,
        only: np.ndarray | None = None,
    ) -> list[tuple[int, float]] | None:
        """BM25 top-k, or ``None`` when the cache cannot answer (the caller uses FTS5)."""
        entry = self._entry(conn, cid)
        index = self._keyword_index(conn, cid, entry)
        if index is None:
            return None
        scores = index.scores(words)
        rows = self._rows(entry, acl, v, only)
        if scores is None or not len(rows):
            return []
        allowed = scores[rows]
        matched = np.flatnonzero(allowed > 0)
        if not len(matched):
            return []
        best = matched[_top(allowed[matched], k)]
        return [(int(entry.ids[rows[i]]), float(allowed[i])) for i in best]

    def _rows(
        self, entry: _Entry, acl: Sequence[int], v: int, only: np.ndarray | None
    ) -> np.ndarray:
        """Positions the caller may see, ascending: ACL sets, version, metadata filter."""
        key = (tuple(sorted(set(acl))), v)
        rows = entry.masks.get(key)
        if rows is None:
            # a lookup table over ACL ids; ids past the largest allowed one hit the last
            # slot, which stays False
            lookup = np.zeros(max(key[0], default=0) + 2, dtype=bool)
            lookup[[a for a in key[0] if a >= 0]] = True
            allowed = lookup[np.clip(entry.acl, 0, len(lookup) - 1)]
            rows = np.flatnonzero(allowed & (entry.added <= v) & (entry.removed > v))
            with self._lock:
                if len(entry.masks) >= _MASKS_KEPT:
                    entry.masks.pop(next(iter(entry.masks)))
                entry.masks[key] = rows
        if only is not None:
            rows = rows[np.isin(entry.ids[rows], only)]
        return rows

    def _entry(self, conn: Connection, cid: int) -> _Entry:
        generation = int(
            conn.exec_driver_sql(
                "SELECT coalesce(max(version), 0) FROM retrieval_versions WHERE collection_id = ?",
                (cid,),
            ).scalar_one()
        )
        with self._lock:
            entry = self._entries.get(cid)
            if entry is None or entry.generation != generation:
                entry = self._entries[cid] = self._load(conn, cid, generation)
            return entry

    def _keyword_index(self, conn: Connection, cid: int, entry: _Entry) -> KeywordIndex | None:
        with self._lock:
            if entry.keyword is None and len(entry.ids):
                rows = conn.exec_driver_sql(
                    "SELECT id, heading, text FROM retrieval_chunks WHERE collection_id = ? "
                    "ORDER BY id",
                    (cid,),
                ).all()
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                if not np.array_equal(ids, entry.ids):
                    return None  # a write raced the load; FTS5 answers this query
                texts = [f"{r[1]}\n{r[2]}" if r[1] else r[2] for r in rows]
                entry.keyword = KeywordIndex.build(texts)
            return entry.keyword

    @staticmethod
    def _load(conn: Connection, cid: int, generation: int) -> _Entry:
        rows = conn.exec_driver_sql(
            f"SELECT rowid, acl_id, added, removed, embedding FROM retrieval_vec_{cid}"  # noqa: S608
        ).all()
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return _Entry(generation, empty, empty, empty, empty, np.zeros((0, 0), np.float32))
        columns = list(zip(*rows, strict=True))
        dim = len(rows[0][4]) // 4
        matrix = np.frombuffer(b"".join(columns[4]), dtype=np.float32).reshape(len(rows), dim)
        ids = np.asarray(columns[0], dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        return _Entry(
            generation,
            ids[order],
            np.asarray(columns[1], dtype=np.int64)[order],
            np.asarray(columns[2], dtype=np.int64)[order],
            np.asarray(columns[3], dtype=np.int64)[order],
            np.ascontiguousarray(matrix[order]),
        )


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return best[np.argsort(-scores[best], kind="stable")]
