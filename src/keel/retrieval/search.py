"""Hybrid search: BM25 and vector candidates, each selected among the chunks the caller may
read and the metadata filter admits, fused by reciprocal rank fusion, then diversified (MMR)
and reranked.

Reciprocal rank fusion (Cormack, Clarke & Büttcher 2009): score(d) = Σ 1 / (k + rank(d)),
summed over the rankings a document appears in, with k = 60. Maximal marginal relevance
(Carbonell & Goldstein 1998) picks, at each step, the candidate maximizing
lambda * sim(query, d) - (1 - lambda) * max sim(d, picked).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from keel.retrieval.backends import Restriction
from keel.retrieval.embedders import Embedder
from keel.retrieval.index import RetrievalIndex
from keel.retrieval.types import Hit

RRF_K = 60
_TERM = re.compile(r"\w+")
_STOPWORDS = frozenset(
    _TERM.findall(
        """a an and are as at be by can do does for from how i in is it me my of on or our please
        tell that the this to was we what when where which who why will with you your"""
    )
)
Mode = Literal["hybrid", "vector", "keyword"]


def keyword_terms(text: str, limit: int = 16) -> list[str]:
    terms: list[str] = []
    for term in _TERM.findall(text.lower()):
        if term not in _STOPWORDS and len(term) > 1 and term not in terms:
            terms.append(term)
    return terms[:limit]


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def mmr(query: np.ndarray, vectors: Sequence[np.ndarray], k: int, lam: float) -> list[int]:
    """Positions of ``vectors`` in MMR order (at most ``k``)."""
    if not vectors:
        return []
    matrix = np.stack(vectors)
    relevance = matrix @ query
    picked: list[int] = []
    rest = list(range(len(vectors)))
    while rest and len(picked) < k:
        if picked:
            redundancy = (matrix[rest] @ matrix[picked].T).max(axis=1)
        else:
            redundancy = np.zeros(len(rest))
        scores = lam * relevance[rest] - (1 - lam) * redundancy
        best = rest[int(np.argmax(scores))]
        picked.append(best)
        rest.remove(best)
    return picked


class Reranker(Protocol):
    name: str

    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


@dataclass(frozen=True, slots=True)
class SearchRequest:
    collection: str
    query: str
    groups: tuple[str, ...] = ()
    top_k: int = 5
    candidates: int = 50
    mode: Mode = "hybrid"
    filters: Mapping[str, Any] = field(default_factory=dict)
    mmr_lambda: float | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    collection: str
    version: int
    hits: list[Hit]


class Searcher:
    """Runs searches on one index with one embedder; stateless between calls."""

    def __init__(self, index: RetrievalIndex, embedder: Embedder) -> None:
        self._index = index
        self._embedder = embedder

    async def search(
        self, request: SearchRequest, reranker: Reranker | None = None
    ) -> SearchResult:
        qvec: np.ndarray | None = None
        if request.mode != "keyword" or request.mmr_lambda is not None:
            qvec = (await self._embedder.embed([request.query]))[0]
        # only MMR and rerankers look past the fused top-k
        every = request.mmr_lambda is not None or reranker is not None
        version, hits = await asyncio.to_thread(self._candidates, request, qvec, every)
        if request.mmr_lambda is not None and qvec is not None and hits:
            hits = await asyncio.to_thread(self._diversify, request, qvec, hits)
        if reranker is not None and hits:
            hits = await reranker.rerank(request.query, hits)
        return SearchResult(request.collection, version, hits[: request.top_k])

    def _candidates(
        self, request: SearchRequest, qvec: np.ndarray | None, every: bool = True
    ) -> tuple[int, list[Hit]]:
        """Vector and keyword candidates, each selected inside its own query among the
        chunks the caller may read (ACL sets, version, metadata filter), fused by RRF."""
        index = self._index
        with index.engine.connect() as conn:
            found = index.collection(request.collection, conn)
            v, cid = found.current_version, found.id
            if not found.dim:
                return v, []
            acl = index.allowed_acls(conn, request.groups)
            only = index.backend.restrict(conn, cid, request.filters) if request.filters else None
            terms = keyword_terms(request.query) if request.mode != "vector" else []
            wants_vector = qvec is not None and request.mode != "keyword"
            pending: Future[list[tuple[int, float]]] | None = None
            if terms and wants_vector:  # the keyword half runs beside the vector half
                pending = index.pool.submit(
                    self._keyword, cid, terms, request.candidates, acl, v, only
                )
            vector: list[int] = []
            if wants_vector and qvec is not None:
                knn = index.backend.knn(conn, cid, qvec, request.candidates, acl, v, only)
                vector = [i for i, _ in knn]
            keyword: list[int] = []
            if pending is not None:
                keyword = [i for i, _ in pending.result()]
            elif terms:
                found_kw = index.backend.keyword(conn, cid, terms, request.candidates, acl, v, only)
                keyword = [i for i, _ in found_kw]
            fused = rrf([r for r in (vector, keyword) if r])
            order = sorted(fused, key=lambda i: -fused[i])
            if not every:
                order = order[: request.top_k]
            rows = index.fetch(conn, cid, order, acl, v)
        hits = []
        vrank = {i: n for n, i in enumerate(vector, 1)}
        krank = {i: n for n, i in enumerate(keyword, 1)}
        for chunk_id in order:
            hit = rows.get(chunk_id)
            if hit is not None:
                hit.score = fused[chunk_id]
                hit.vector_rank, hit.keyword_rank = vrank.get(chunk_id), krank.get(chunk_id)
                hits.append(hit)
        return v, hits

    def _keyword(
        self,
        cid: int,
        terms: list[str],
        k: int,
        acl: list[int],
        v: int,
        only: Restriction | None,
    ) -> list[tuple[int, float]]:
        with self._index.engine.connect() as conn:
            return self._index.backend.keyword(conn, cid, terms, k, acl, v, only)

    def _diversify(self, request: SearchRequest, qvec: np.ndarray, hits: list[Hit]) -> list[Hit]:
        assert request.mmr_lambda is not None
        with self._index.engine.connect() as conn:
            found = self._index.collection(request.collection, conn)
            vectors = self._index.backend.vectors(conn, found.id, [h.chunk_id for h in hits])
        kept = [h for h in hits if h.chunk_id in vectors]
        order = mmr(qvec, [vectors[h.chunk_id] for h in kept], request.top_k, request.mmr_lambda)
        return [kept[i] for i in order]
