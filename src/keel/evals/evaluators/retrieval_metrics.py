"""Retrieval quality on labeled sets: recall@k, MRR and nDCG@k of what a pipeline cited.

The relevant documents come from the item's ``expected`` (a list of sources, or a mapping
source -> graded relevance) or from ``metadata.relevant``. A relevant entry matches a
citation whose source equals it or ends with ``/`` + it, so labels can name ``billing.md``
for ``/srv/docs/billing.md``. Items without relevance labels score nothing (``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.core.errors import ConfigError
from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    check_options,
)
from keel.retrieval.evaluation import ndcg_at_k, recall_at_k, reciprocal_rank


def relevance(case: Case) -> dict[str, float] | None:
    labels: Any = case.item.expected
    if not isinstance(labels, list | dict):
        labels = case.item.metadata.get("relevant")
    if isinstance(labels, list) and all(isinstance(x, str) for x in labels):
        return dict.fromkeys(labels, 1.0)
    if isinstance(labels, dict) and all(isinstance(v, int | float) for v in labels.values()):
        return {str(k): float(v) for k, v in labels.items()}
    return None


def _label_for(source: str, labels: Mapping[str, float]) -> str:
    for label in labels:
        if source == label or source.endswith("/" + label):
            return label
    return source


@dataclass(frozen=True, slots=True)
class RetrievalMetrics:
    k: int = 10
    name: str = "retrieval"
    version: str = "1"

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return (
            Metric(f"recall_at_{self.k}", "score", description="relevant documents cited"),
            Metric("mrr", "score", description="1 / rank of the first relevant citation"),
            Metric(f"ndcg_at_{self.k}", "score", description="graded ranking quality"),
        )

    async def evaluate(self, case: Case) -> Scored:
        names = [m.name for m in self.metrics]
        labels = relevance(case)
        if labels is None:
            return Scored(dict.fromkeys(names, None))
        retrieved: list[str] = []
        for citation in case.citations:
            label = _label_for(str(citation.get("source", "")), labels)
            if label not in retrieved:  # several chunks of one document count once
                retrieved.append(label)
        values = (
            recall_at_k(retrieved, labels, self.k),
            reciprocal_rank(retrieved, labels),
            ndcg_at_k(retrieved, labels, self.k),
        )
        return Scored(dict(zip(names, values, strict=True)), {"retrieved": retrieved[: self.k]})


def _build(options: Mapping[str, Any], context: EvalContext) -> RetrievalMetrics:
    check_options(options, {"k"}, "retrieval")
    try:
        k = int(options.get("k", 10))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            "evaluator 'retrieval': k must be an integer", code="evaluator_option_invalid"
        ) from exc
    if k < 1:
        raise ConfigError("evaluator 'retrieval': k must be >= 1", code="evaluator_option_invalid")
    return RetrievalMetrics(k)


plugin = EvaluatorPlugin(
    "retrieval", _build, "recall@k, MRR and nDCG@k of the cited documents on labeled items."
)
