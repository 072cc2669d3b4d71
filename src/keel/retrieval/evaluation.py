"""Retrieval evaluation on labeled sets: recall@k, MRR and nDCG@k.

Each labeled case is a query with the ids it should retrieve (document sources by default,
or any key a ``key`` function extracts from a hit) and optional graded relevance. The
functions are pure so an eval runner can call them on its own results; ``evaluate`` runs a
labeled set against a collection and averages them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.retrieval.types import Hit

if TYPE_CHECKING:
    from keel.retrieval.service import RetrievalService


def recall_at_k(
    retrieved: Sequence[str], relevant: Mapping[str, float] | set[str], k: int
) -> float:
    """Share of the relevant ids found in the first ``k`` results (1.0 when none are relevant)."""
    wanted = set(relevant)
    if not wanted:
        return 1.0
    return len(wanted & set(retrieved[:k])) / len(wanted)


def reciprocal_rank(retrieved: Sequence[str], relevant: Mapping[str, float] | set[str]) -> float:
    """1 / rank of the first relevant result; 0 when none is retrieved."""
    wanted = set(relevant)
    for rank, item in enumerate(retrieved, 1):
        if item in wanted:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved: Sequence[str], relevant: Mapping[str, float] | set[str], k: int) -> float:
    """Normalized discounted cumulative gain with graded (or binary) relevance."""
    gains = dict(relevant) if isinstance(relevant, Mapping) else dict.fromkeys(relevant, 1.0)
    if not gains:
        return 1.0
    seen: set[str] = set()
    dcg = 0.0
    for rank, item in enumerate(retrieved[:k], 1):
        if item in gains and item not in seen:  # a document counts once
            dcg += (2 ** gains[item] - 1) / math.log2(rank + 1)
            seen.add(item)
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(rank + 1) for rank, g in enumerate(ideal, 1))
    return dcg / idcg if idcg else 0.0


@dataclass(frozen=True, slots=True)
class LabeledQuery:
    query: str
    relevant: Mapping[str, float] | set[str]
    groups: tuple[str, ...] = ()


@dataclass(slots=True)
class RetrievalScores:
    k: int
    cases: int = 0
    recall: float = 0.0
    mrr: float = 0.0
    ndcg: float = 0.0
    per_case: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "cases": self.cases,
            f"recall@{self.k}": round(self.recall, 4),
            "mrr": round(self.mrr, 4),
            f"ndcg@{self.k}": round(self.ndcg, 4),
        }


def source_key(hit: Hit) -> str:
    return hit.source


async def evaluate(
    service: RetrievalService,
    collection: str,
    cases: Sequence[LabeledQuery],
    k: int = 10,
    key: Callable[[Hit], str] = source_key,
    **search: Any,
) -> RetrievalScores:
    """Run each labeled query as its own caller (its groups) and average the metrics."""
    from keel.retrieval.search import SearchRequest

    scores = RetrievalScores(k)
    for case in cases:
        request = SearchRequest(collection, case.query, groups=case.groups, top_k=k, **search)
        result = await service.search(request)
        ranked = [key(h) for h in result.hits]
        row = {
            "query": case.query,
            "recall": recall_at_k(ranked, case.relevant, k),
            "rr": reciprocal_rank(ranked, case.relevant),
            "ndcg": ndcg_at_k(ranked, case.relevant, k),
        }
        scores.per_case.append(row)
    n = len(scores.per_case)
    if n:
        scores.cases = n
        scores.recall = sum(r["recall"] for r in scores.per_case) / n
        scores.mrr = sum(r["rr"] for r in scores.per_case) / n
        scores.ndcg = sum(r["ndcg"] for r in scores.per_case) / n
    return scores
