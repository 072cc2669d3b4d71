"""Embedding similarity: cosine similarity of answer and expected answer (-1..1).

Uses WordLlama's bundled 256-dimension static embeddings (weights ship in the wheel; loaded
offline, ~1 s once per evaluator). When the retrieval package's embedder registry lands,
this evaluator should take its embedder from there so evals and retrieval agree.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.core.errors import ConfigError
from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    check_options,
    expected_text,
)


def load_wordllama() -> Any:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        msg = "the embedding evaluator needs the wordllama package: pip install wordllama"
        raise ConfigError(msg, code="evaluator_unavailable")
    from wordllama import WordLlama

    # Pointing the cache at the package's own files keeps the load offline.
    return WordLlama.load(cache_dir=Path(spec.origin).parent, disable_download=True)


@dataclass(frozen=True, slots=True)
class EmbeddingSimilarity:
    model: Any = field(repr=False)
    name: str = "embedding"
    version: str = "1+wordllama-l2_supercat-256"
    metrics: tuple[Metric, ...] = (
        Metric("embedding_similarity", "score", description="cosine(answer, expected)"),
    )

    async def evaluate(self, case: Case) -> Scored:
        reference = expected_text(case.item)
        if reference is None:
            return Scored({"embedding_similarity": None})
        return Scored(
            {"embedding_similarity": float(self.model.similarity(case.answer, reference))}
        )


def _factory(options: Mapping[str, Any], context: EvalContext) -> EmbeddingSimilarity:
    check_options(options, set(), "embedding")
    return EmbeddingSimilarity(load_wordllama())


plugin = EvaluatorPlugin(
    "embedding", _factory, "Cosine similarity of answer and expected answer (WordLlama)."
)
