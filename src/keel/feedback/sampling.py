"""Production traffic sampled off the request path, for review and for online evaluation.

``offer`` is what a request handler calls after a pipeline answered: two random draws (one
per purpose, at the pipeline's configured rates) and, when either hits, a ``put_nowait`` on
a bounded queue. It never blocks and never raises; when the queue is full the run is dropped
and counted. A background task in the server drains the queue: sampled-review intake (one
store write) and online scoring (the evaluators, then one store write).

Without a running task (the CLI, or before the server started) ``offer`` does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.store.samples import OnlineScore, ReviewSample

if TYPE_CHECKING:
    from keel.feedback.online import OnlineScorer
    from keel.pipeline.runner import RunResult
    from keel.settings import FeedbackSettings
    from keel.store import Store

log = logging.getLogger("keel.sampling")

BATCH = 256  # sampled runs written per store transaction

# How a sampled input is kept: the pipeline's logging policy applied to it (None drops it).
InputPolicy = Callable[["RunResult", Any], Any]


@dataclass(frozen=True, slots=True)
class SampledRun:
    result: RunResult
    input: Any
    review: bool
    score: bool


@dataclass(slots=True)
class SamplerCounts:
    offered: int = 0
    sampled_review: int = 0
    sampled_online: int = 0
    dropped: int = 0
    reviewed_intake: int = 0
    scored: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class TrafficSampler:
    def __init__(
        self,
        store: Store,
        settings: FeedbackSettings,
        scorer: Callable[[], OnlineScorer],
        *,
        input_policy: InputPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._scorer_factory = scorer
        self._scorer: OnlineScorer | None = None
        self._input_policy = input_policy or (lambda result, data: data)
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[SampledRun] | None = None
        self.counts = SamplerCounts()

    @property
    def running(self) -> bool:
        return self._queue is not None

    def start(self) -> None:
        """Build the online evaluators (a bad configuration fails here) and open the queue.

        Call from the event loop that will run :meth:`run`."""
        self._scorer = self._scorer_factory()
        self._queue = asyncio.Queue(maxsize=self._settings.queue_size)

    def offer(self, result: RunResult, data: Any) -> None:
        queue, scorer = self._queue, self._scorer
        if queue is None or scorer is None:
            return
        self.counts.offered += 1
        review = self._draw(self._settings.sample_rate(result.pipeline))
        score = self._draw(scorer.rate(result.pipeline))
        if not (review or score):
            return
        self.counts.sampled_review += review
        self.counts.sampled_online += score
        try:
            queue.put_nowait(SampledRun(result, data, review, score))
        except asyncio.QueueFull:
            self.counts.dropped += 1

    def _draw(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self._rng.random() < rate)

    async def run(self) -> None:
        """Drain the queue until cancelled, in batches (one store transaction each); what is
        left at shutdown is counted as dropped."""
        queue = self._queue
        if queue is None:
            raise RuntimeError("start() the sampler before running it")
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                try:
                    await self.process(batch)
                except Exception:  # one bad batch must not stop the worker
                    self.counts.failed += len(batch)
                    log.exception("%d sampled traces failed", len(batch))
        finally:
            self.counts.dropped += queue.qsize()
            self._queue = None

    async def process(self, batch: list[SampledRun]) -> None:
        now = datetime.now(UTC)
        samples = [
            ReviewSample(
                id=secrets.token_hex(8),
                trace_id=s.result.trace_id,
                pipeline=s.result.pipeline,
                pipeline_version=s.result.version,
                input=self._input_policy(s.result, s.input),
                result=s.result.to_dict(),
                status="pending",
                created_at=now,
            )
            for s in batch
            if s.review
        ]
        scores: list[OnlineScore] = []
        scored = [s for s in batch if s.score]
        if self._scorer is not None:
            for sampled in scored:
                scores.extend(await self._scorer.score(sampled.result, sampled.input))
        await asyncio.to_thread(self._write, samples, scores)
        self.counts.reviewed_intake += len(samples)
        self.counts.scored += len(scored)

    def _write(self, samples: list[ReviewSample], scores: list[OnlineScore]) -> None:
        self._store.samples.add_many(samples)
        self._store.samples.add_scores(scores)
