"""What sampling production traffic costs, on the request path and off it.

Figures printed:

* ``offer()`` CPU time per request, the only part on the request path, with no draw hitting
  (rates 0) and with both hitting (review and online rate 1, a queue big enough to hold all);
* the background worker's throughput into a real SQLite store: sampled-review intake
  (one insert per sample), and online scoring with the ``latency`` and ``regex`` evaluators
  (the evaluators plus one insert per trace).

    python bench/feedback.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from keel.core.usage import Usage
from keel.evals.evaluators.base import EvalContext
from keel.evals.registry import EvaluatorRegistry
from keel.feedback.online import OnlineScorer
from keel.feedback.sampling import TrafficSampler
from keel.pipeline.runner import RunResult
from keel.settings import FeedbackSettings, OnlineEvalSettings
from keel.store import Store


def result(number: int) -> RunResult:
    return RunResult(
        trace_id=f"{number:032x}",
        correlation_id=f"req-{number}",
        pipeline="triage",
        version="v1",
        label=None,
        output={"label": "billing"},
        decision=None,
        text='{"label": "billing"}',
        usage=Usage(120, 8),
        cost_usd=Decimal("0.0001"),
        model="testing:echo",
        model_version=None,
        latency_ms=3.0,
    )


def scorer(rate: float) -> OnlineScorer:
    registry = EvaluatorRegistry.from_entry_points()
    configs = [
        OnlineEvalSettings(
            pipeline="triage", evaluators=["latency", "regex:pattern=billing"], sample_rate=rate
        )
    ]
    return OnlineScorer(configs, lambda spec: registry.build(spec, EvalContext()))


async def offer_cost(store: Store, rate: float, requests: int) -> float:
    """CPU microseconds per offer() at ``rate`` for review and online scoring."""
    settings = FeedbackSettings(review_sample_rate=rate, queue_size=requests + 1)
    sampler = TrafficSampler(store, settings, lambda: scorer(rate))
    sampler.start()
    results = [result(i) for i in range(requests)]
    data = {"subject": "Refund", "body": "I was charged twice."}
    started = time.process_time()
    for run in results:
        sampler.offer(run, data)
    return (time.process_time() - started) / requests * 1e6


async def worker_throughput(store: Store, requests: int, *, review: bool) -> float:
    """Sampled runs processed per second by the background worker."""
    settings = FeedbackSettings(review_sample_rate=1.0 if review else 0.0, queue_size=requests)
    sampler = TrafficSampler(store, settings, lambda: scorer(0.0 if review else 1.0))
    sampler.start()
    offset = 10_000_000 if review else 20_000_000
    for i in range(requests):
        sampler.offer(result(offset + i), {"subject": "x"})
    started = time.perf_counter()
    worker = asyncio.create_task(sampler.run())
    done = (lambda: sampler.counts.reviewed_intake) if review else (lambda: sampler.counts.scored)
    for _ in range(100_000):
        if done() >= requests:
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    return requests / elapsed


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'keel.db'}")
        try:
            idle = await offer_cost(store, 0.0, requests)
            hit = await offer_cost(store, 1.0, requests)
            print(
                f"offer(), no draw hits:     {idle:.2f} us CPU per request ({requests:,} requests)"
            )
            print(f"offer(), both draws hit:   {hit:.2f} us CPU per request")
            intake = await worker_throughput(store, min(requests, 2000), review=True)
            scored = await worker_throughput(store, min(requests, 2000), review=False)
            print(f"worker, review intake:     {intake:,.0f} samples/s (SQLite)")
            print(f"worker, online scoring:    {scored:,.0f} traces/s (latency + regex, SQLite)")
        finally:
            store.close()
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    asyncio.run(main(parser.parse_args().requests))
