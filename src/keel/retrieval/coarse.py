"""Vector top-k over an in-process matrix: an 8-bit coarse pass, then exact rescoring.

A float32 matrix of 100,000 unit vectors at 256 dimensions is 100 MB, and one exact
matrix-vector product reads all of it (a few milliseconds). The coarse pass scans 8-bit
scalar-quantized codes instead (faiss ``IndexScalarQuantizer``, ``QT_8bit``: one byte per
dimension, a quarter of the bytes, with SIMD distance kernels), keeps the best ``pool``
positions, and rescores those exactly against the float32 rows; the result is ranked by exact
scores only. With ``pool`` a few times ``k`` the coarse pass rarely loses one of the true
top-k (``bench/retrieval.py`` measures recall@10 against an exhaustive float64 search).

Which rows may be returned is a boolean mask over positions, applied *inside* the coarse
scan (faiss ``IDSelectorBitmap``): a masked-out row is never scored, so it can never be a
candidate. A mask that admits few rows skips the coarse pass and scores those rows exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXACT_BELOW = 20_000  # admitted rows at or under this are scored exactly, no coarse pass
MIN_POOL = 100


def pool_size(k: int) -> int:
    """Candidates the coarse pass keeps for exact rescoring, for a top-``k`` query."""
    return max(4 * k, MIN_POOL)


class CoarseIndex:
    """8-bit codes of a matrix's rows for the coarse pass; the float32 matrix is kept by the
    caller and passed to ``top``."""

    def __init__(self, matrix: np.ndarray) -> None:
        import faiss  # deferred: only the in-process cache needs it

        self._faiss: Any = faiss
        rows, dim = matrix.shape
        index = faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        if rows:
            index.train(matrix)
            index.add(matrix)
        self._index = index
        self.rows = rows

    def candidates(self, query: np.ndarray, pool: int, allowed: np.ndarray) -> np.ndarray:
        """Positions of up to ``pool`` admitted rows with the best approximate scores."""
        faiss = self._faiss
        # One query needs no OpenMP team: with one, its idle threads spin after every
        # search, measured at 10 ms of CPU per query instead of 2 on a busy machine. The
        # setting belongs to the calling thread, so it is made on every call.
        faiss.omp_set_num_threads(1)
        bitmap = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        _, found = self._index.search(
            query.reshape(1, -1), pool, params=faiss.SearchParameters(sel=selector)
        )
        positions: np.ndarray = found[0]
        return positions[positions >= 0]


def top(
    matrix: np.ndarray,
    query: np.ndarray,
    k: int,
    allowed: np.ndarray,
    coarse: CoarseIndex | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the ``k`` admitted rows with the highest exact scores, best first, and
    those scores. ``allowed`` is a boolean mask over the matrix's rows."""
    query = np.ascontiguousarray(query, dtype=np.float32)
    admitted = int(np.count_nonzero(allowed))
    if admitted == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if coarse is not None and admitted > max(EXACT_BELOW, pool_size(k)):
        candidates = coarse.candidates(query, pool_size(k), allowed)
    else:
        candidates = np.flatnonzero(allowed)
    # einsum's own single-threaded loop: a BLAS matrix-vector product fans out to every
    # core and, measured on a busy two-core machine, ran 2-4x slower
    if len(candidates) * 4 < len(matrix):  # few rows: copy them out, score only those
        scores = np.einsum("ij,j->i", np.take(matrix, candidates, axis=0), query)
    else:
        scores = np.einsum("ij,j->i", matrix, query)[candidates]
    best = best_first(scores, k)
    return candidates[best], scores[best]


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first (ties by position)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return best[np.lexsort((best, -scores[best]))]
