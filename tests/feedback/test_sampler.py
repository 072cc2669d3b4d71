"""The traffic sampler: draws at the configured rates, never blocks the caller, drops and
counts what does not fit its bounded queue, and writes samples and scores off the hot path."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from keel.core.usage import Usage
from keel.evals.evaluators.base import EvalContext
from keel.evals.registry import EvaluatorRegistry
from keel.feedback.online import OnlineScorer
from keel.feedback.sampling import TrafficSampler
from keel.pipeline.runner import RunResult
from keel.settings import FeedbackSettings, OnlineEvalSettings
from keel.store import Store


def result(number: int, pipeline: str = "triage") -> RunResult:
    return RunResult(
        trace_id=f"{number:032x}", correlation_id=f"req-{number}", pipeline=pipeline,
        version="v1", label=None, output="an answer", decision=None, text="an answer",
        usage=Usage(3, 2), cost_usd=Decimal("0.001"), model="testing:echo",
        model_version=None, latency_ms=float(number),
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'keel.db'}")
    yield opened
    opened.close()


def scorer(configs: list[OnlineEvalSettings]) -> OnlineScorer:
    registry = EvaluatorRegistry.from_entry_points()
    return OnlineScorer(configs, lambda spec: registry.build(spec, EvalContext()))


def test_a_full_queue_drops_and_counts_without_blocking(store: Store) -> None:
    settings = FeedbackSettings(review_sample_rate=1.0, queue_size=3)
    sampler = TrafficSampler(store, settings, lambda: scorer([]))
    sampler.offer(result(0), {"q": 0})  # not started: nothing happens
    assert sampler.counts.offered == 0

    async def scenario() -> None:
        sampler.start()
        for i in range(10):  # the worker is not running yet: only 3 fit
            sampler.offer(result(i), {"q": i})
        worker = asyncio.create_task(sampler.run())
        for _ in range(200):
            if sampler.counts.reviewed_intake == 3:
                break
            await asyncio.sleep(0.01)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(scenario())
    counts = sampler.counts.to_dict()
    assert counts["offered"] == 10 and counts["dropped"] == 7 and counts["reviewed_intake"] == 3
    stored = store.samples.list(status="pending")
    assert sorted(s.input["q"] for s in stored) == [0, 1, 2]  # the first three offered
    assert not sampler.running


def test_rates_are_per_pipeline_and_per_purpose(store: Store) -> None:
    settings = FeedbackSettings(review_sample_rates={"triage": 0.3}, queue_size=10_000)
    online = [OnlineEvalSettings(pipeline="triage", evaluators=["latency"], sample_rate=0.5)]
    sampler = TrafficSampler(store, settings, lambda: scorer(online), rng=random.Random(4))

    async def scenario() -> None:
        sampler.start()
        for i in range(4000):
            sampler.offer(result(i), None)
        for i in range(500):
            sampler.offer(result(i, pipeline="other"), None)

    asyncio.run(scenario())
    counts = sampler.counts
    assert counts.offered == 4500 and counts.dropped == 0
    assert abs(counts.sampled_review / 4000 - 0.3) < 0.03
    assert abs(counts.sampled_online / 4000 - 0.5) < 0.03


def test_online_scores_are_written_per_trace_and_metric(store: Store) -> None:
    online = [OnlineEvalSettings(pipeline="triage", evaluators=["latency", "regex:pattern=answer"],
                                 sample_rate=1.0)]  # fmt: skip
    sampler = TrafficSampler(store, FeedbackSettings(), lambda: scorer(online))

    async def scenario() -> None:
        sampler.start()
        worker = asyncio.create_task(sampler.run())
        for i in range(5):
            sampler.offer(result(i), None)
        for _ in range(500):
            if sampler.counts.scored == 5:
                break
            await asyncio.sleep(0.01)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(scenario())
    scores = store.samples.scores(pipeline="triage")
    assert len(scores) == 10
    assert {s.metric for s in scores} == {"latency_ms", "regex"}
    assert all(s.value == 1.0 for s in scores if s.metric == "regex")
