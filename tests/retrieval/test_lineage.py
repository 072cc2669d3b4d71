"""Evaluation metrics, freshness and lineage (version sources, answers citing a document)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from keel.pipeline.runner import Runner
from keel.retrieval.evaluation import (
    LabeledQuery,
    evaluate,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
)
from keel.retrieval.lineage import citing_traces, freshness, version_sources
from keel.retrieval.service import RetrievalPlugin, RetrievalService

from ..pipeline.helpers import Harness, compile_spec
from .conftest import write_corpus

pytestmark = pytest.mark.anyio


def test_metrics_on_hand_computed_rankings() -> None:
    ranked = ["a", "x", "b", "y"]
    assert recall_at_k(ranked, {"a", "b", "c"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, {"a", "b", "c"}, 4) == pytest.approx(2 / 3)
    assert reciprocal_rank(ranked, {"b"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, {"z"}) == 0.0
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 2) == pytest.approx(1.0)
    swapped = ndcg_at_k(["b", "a"], {"a": 2.0, "b": 1.0}, 2)
    dcg = 1 + 3 / math.log2(3)
    idcg = 3 + 1 / math.log2(3)
    assert swapped == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["x", "y"], {"a"}, 2) == 0.0


async def test_evaluate_a_labeled_set(service: RetrievalService, tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    await service.ingest("kb", docs)
    billing = str(docs / "guide" / "billing.md")
    install = str(docs / "guide" / "install.md")
    scores = await evaluate(
        service,
        "kb",
        [
            LabeledQuery("how long do refunds take", {billing}),
            LabeledQuery("run the database migrations when upgrading", {install}),
        ],
        k=3,
    )
    assert scores.cases == 2
    assert scores.recall == 1.0 and scores.mrr == 1.0
    assert scores.to_dict()["ndcg@3"] == 1.0


async def test_freshness_lists_changed_missing_and_new(
    service: RetrievalService, tmp_path: Path
) -> None:
    docs = write_corpus(tmp_path)
    await service.ingest("kb", docs)
    assert freshness(service.index, "kb") == {"changed": [], "missing": [], "new": []}
    billing = docs / "guide" / "billing.md"
    billing.write_text("# Billing\n\nNew terms.")
    later = billing.stat().st_mtime + 5
    os.utime(billing, (later, later))
    (docs / "faq.txt").unlink()
    (docs / "new.md").write_text("# New\n\nFresh page.")
    report = freshness(service.index, "kb")
    assert report == {
        "changed": [str(billing)],
        "missing": [str(docs / "faq.txt")],
        "new": [str(docs / "new.md")],
    }


async def test_versions_and_answers_trace_back_to_documents(
    service: RetrievalService, tmp_path: Path
) -> None:
    docs = write_corpus(tmp_path)
    await service.ingest("kb", docs)
    billing = docs / "guide" / "billing.md"
    first = version_sources(service.index, "kb", 1)
    assert first["embedder"] == "wordllama:l2_supercat_256"
    hashes = {d["source"]: d["content_hash"] for d in first["documents"]}
    assert str(billing) in hashes and len(hashes) == 4

    billing.write_text("# Billing\n\nRefunds now take ten business days.")
    await service.ingest("kb", docs)
    second = version_sources(service.index, "kb")
    assert second["version"] == 2
    assert {d["source"]: d["content_hash"] for d in second["documents"]}[str(billing)] != hashes[
        str(billing)
    ]

    harness = Harness()
    runner = Runner(
        harness.registry,
        harness.tracer_provider.get_tracer("test"),
        default_model="testing:echo",
        plugins=[RetrievalPlugin(service)],
    )
    spec = {
        "name": "kb-qa",
        "input": {"schema": {"type": "object"}},
        "prompt": {"user": "{{ passages | map(attribute='text') | join(' ') }} {{ question }}"},
        "model": {"id": "testing:echo"},
        "retrieval": {"collection": "kb", "top_k": 1},
    }
    result = await runner.run(compile_spec(spec), {"question": "how long do refunds take"})
    assert result.citations[0]["source"] == str(billing)
    cited = citing_traces(service.index, "kb", str(billing))
    assert [(c["trace_id"], c["version"], c["rank"]) for c in cited] == [(result.trace_id, 2, 1)]
    assert citing_traces(service.index, "kb", str(docs / "faq.txt")) == []
