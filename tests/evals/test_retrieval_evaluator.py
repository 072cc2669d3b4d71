"""Retrieval metrics as an evaluator: hand-computed cases, and an eval run over a RAG pipeline."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from keel.core.dataset import DatasetItem
from keel.core.errors import ConfigError
from keel.evals import service
from keel.evals.evaluators.base import Case, EvalContext, Scored
from keel.evals.registry import EvaluatorRegistry
from keel.pipeline.loader import load_spec_dir, spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings

from ..conftest import EXAMPLES
from ..retrieval.conftest import write_corpus


def score(spec: str, expected: object, sources: list[str], metadata: dict | None = None) -> Scored:
    evaluator = EvaluatorRegistry.from_entry_points().build(spec, EvalContext())
    item = DatasetItem("i", {"question": "?"}, expected=expected, metadata=metadata or {})
    citations = tuple({"n": n, "source": s} for n, s in enumerate(sources, 1))
    return asyncio.run(evaluator.evaluate(Case(item, "a", "a", citations=citations)))


def test_hand_computed_recall_mrr_and_ndcg() -> None:
    sources = ["/d/faq.md", "/d/billing.md", "/d/billing.md", "/d/other.md"]
    scored = score("retrieval", ["billing.md", "refunds.md"], sources)
    ideal = 1 + 1 / math.log2(3)
    assert scored.scores["recall_at_10"] == 0.5
    assert scored.scores["mrr"] == 0.5
    assert scored.scores["ndcg_at_10"] == pytest.approx((1 / math.log2(3)) / ideal)
    assert scored.details["retrieved"] == ["/d/faq.md", "billing.md", "/d/other.md"]


def test_k_cuts_the_ranking_and_labels_can_live_in_metadata() -> None:
    scored = score(
        'retrieval:{"k": 1}', None, ["/d/faq.md", "/d/billing.md"], {"relevant": ["billing.md"]}
    )
    assert scored.scores == {"recall_at_1": 0.0, "mrr": 0.5, "ndcg_at_1": 0.0}


def test_unlabeled_items_score_nothing() -> None:
    assert set(score("retrieval", "a plain answer", ["/d/x.md"]).scores.values()) == {None}


def test_bad_k_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as info:
        score('retrieval:{"k": 0}', [], [])
    assert info.value.code == "evaluator_option_invalid"


@pytest.mark.integration
def test_an_eval_run_scores_what_a_rag_pipeline_cited(tmp_path: Path) -> None:
    runtime = Runtime(
        KeelSettings(home=tmp_path / "home", providers={"default_model": "testing:echo"})
    )
    try:
        write_corpus(tmp_path)
        asyncio.run(runtime.retrieval.ingest("keel-docs", tmp_path / "docs"))
        data = load_spec_dir(EXAMPLES / "docs-qa").model_dump(mode="json", by_alias=True)
        data["model"]["id"] = "testing:echo"
        runtime.catalog.push(spec_from_data(data))
        items = [
            DatasetItem(
                "refunds", {"question": "How long do refunds take?"}, expected=["guide/billing.md"]
            ),
            DatasetItem(
                "upgrade",
                {"question": "How do I run the database migrations?"},
                expected=["guide/install.md"],
            ),
        ]
        runtime.store.datasets.create_version("rag", items, source="test")
        request = service.RunRequest("docs-qa", "rag", evaluators=["retrieval:k=3"])
        run = asyncio.run(service.execute(runtime, service.plan_run(runtime, request)))
        metrics = run.summary["metrics"]
        assert metrics["recall_at_3"]["mean"] == 1.0
        assert metrics["mrr"]["mean"] == 1.0
    finally:
        runtime.close()
