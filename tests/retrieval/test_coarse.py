"""The coarse pass with exact rescoring: masked rows are never candidates, scores are exact,
and the top-k matches an exhaustive search."""

from __future__ import annotations

import numpy as np

from keel.retrieval import coarse


def unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    matrix = rng.standard_normal((rows, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_masked_rows_are_never_returned_and_scores_are_exact() -> None:
    rng = np.random.default_rng(3)
    matrix = unit_rows(rng, 30_000, 32)
    index = coarse.CoarseIndex(matrix)
    hits = 0
    for _ in range(20):
        query = unit_rows(rng, 1, 32)[0]
        exact = matrix @ query
        allowed = np.ones(len(matrix), dtype=bool)
        allowed[np.argsort(-exact)[:50]] = False  # the best rows are off limits
        allowed[rng.choice(len(matrix), 5_000, replace=False)] = False
        positions, scores = coarse.top(matrix, query, 10, allowed, index)
        assert allowed[positions].all()
        np.testing.assert_allclose(scores, exact[positions], rtol=1e-5, atol=1e-6)
        assert list(scores) == sorted(scores, reverse=True)
        best = np.flatnonzero(allowed)[np.argsort(-exact[allowed])[:10]]
        hits += len(set(best) & set(positions))
    assert hits / 200 >= 0.95


def test_a_selective_mask_is_scored_exactly() -> None:
    rng = np.random.default_rng(4)
    matrix = unit_rows(rng, 30_000, 16)
    index = coarse.CoarseIndex(matrix)
    allowed = np.zeros(len(matrix), dtype=bool)
    allowed[rng.choice(len(matrix), 300, replace=False)] = True
    query = unit_rows(rng, 1, 16)[0]
    positions, _ = coarse.top(matrix, query, 7, allowed, index)
    exact = matrix @ query
    want = np.flatnonzero(allowed)[np.argsort(-exact[allowed])[:7]]
    assert list(positions) == list(want)


def test_nothing_admitted_returns_nothing() -> None:
    matrix = unit_rows(np.random.default_rng(5), 100, 8)
    positions, scores = coarse.top(matrix, matrix[0], 5, np.zeros(100, dtype=bool))
    assert len(positions) == 0 and len(scores) == 0
