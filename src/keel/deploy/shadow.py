"""Shadow traffic: run the candidate on mirrored requests, off the hot path.

The request handler answers from stable first, then hands the mirror a job with a
non-blocking ``put``; when the bounded queue is full the job is dropped and counted, so a
slow candidate can never delay or fail a primary answer. Workers run the candidate as its
own trace (role ``shadow``, the same ``keel.deploy.pair_id`` as the primary trace), score
both answers with the deployment's evaluator when it has one, and store the pair. The
shadow's output is never returned to anyone.

By default this mirror runs in a worker process of its own
(:mod:`keel.deploy.shadow_process`), where nothing else shares its loop. With
``deploy.shadow_isolation = "loop"`` it shares the server's event loop with the requests
it mirrors, so it runs at lower priority: a worker starts a run, and scores it, only when
:meth:`Foreground.turn` says no foreground request is ready to run (see
:mod:`keel.deploy.foreground`); the run's own steps are short and each ends at an
``await``. Pairs are written in batches by one task every ``FLUSH_S``, not one
transaction per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.core.dataset import DatasetItem
from keel.core.errors import KeelError
from keel.deploy.foreground import Foreground
from keel.deploy.model import Deployment
from keel.deploy.router import DEPLOYMENT_ID, PAIR_ID, ROLE, STRATEGY
from keel.pipeline.steps import RunContext
from keel.store.deployments import Pair

if TYPE_CHECKING:
    from keel.catalog import PipelineCatalog
    from keel.evals.evaluators.base import Evaluator
    from keel.pipeline.runner import Runner, RunResult
    from keel.store import Store

log = logging.getLogger("keel.deploy.shadow")
EvaluatorFactory = Callable[[str], "Evaluator"]
FLUSH_S = 0.2  # how often finished pairs are written, in one transaction


@dataclass(frozen=True, slots=True)
class MirrorJob:
    deployment: Deployment
    pair_id: str
    input: Any
    baseline: RunResult | None  # None when stable failed
    baseline_error: str | None = None
    caller: str | None = None
    groups: tuple[str, ...] = ()
    stream: bool = False  # the primary streamed: so does the shadow (its first token is timed)
    candidate: str | None = None  # the candidate to run (default: the deployment's first)


@dataclass(slots=True)
class MirrorStats:
    submitted: int = 0
    dropped: int = 0
    completed: int = 0
    failed: int = 0
    pending_pairs: int = 0  # finished runs whose pair is not written yet
    forced_turns: int = 0  # steps run without an idle moment (see Foreground.turn)
    by_deployment: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, int]:
        return {
            "submitted": self.submitted,
            "dropped": self.dropped,
            "completed": self.completed,
            "failed": self.failed,
            "pending_pairs": self.pending_pairs,
            "forced_turns": self.forced_turns,
        }


class ShadowMirror:
    def __init__(
        self,
        runner: Runner,
        catalog: PipelineCatalog,
        store: Store,
        *,
        queue_size: int,
        workers: int,
        evaluators: EvaluatorFactory | None = None,
        foreground: Foreground | None = None,
    ) -> None:
        self._runner = runner
        self._catalog = catalog
        self._store = store
        self._size = queue_size
        self._workers = workers
        self._evaluators = evaluators
        self._built: dict[str, Evaluator] = {}
        self._queue: asyncio.Queue[MirrorJob] | None = None
        self._pairs: list[Pair] = []
        self._flushing = asyncio.Lock()  # one batch written at a time; drain waits for it
        self._writing: asyncio.Future[None] | None = None
        self.foreground = foreground or Foreground()
        self.stats = MirrorStats()

    def submit(self, job: MirrorJob) -> bool:
        """Queue a mirrored request without waiting; False (counted) when it is dropped."""
        self.stats.submitted += 1
        if self._queue is None:
            self.stats.dropped += 1
            return False
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            return False
        return True

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._queue = asyncio.Queue(self._size)
        tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        tasks.append(asyncio.create_task(self._flush_every()))
        try:
            yield
        finally:
            self._queue = None
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._writing is not None:
                await self._writing  # a batch the cancelled flusher had started
            await self._flush()

    async def drain(self) -> None:
        """Wait until every queued job has finished and its pair is stored (tests, benches)."""
        if self._queue is not None:
            await self._queue.join()
        await self._flush()

    async def _work(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            job = await queue.get()
            try:
                await self._turn()
                pair = await self._run(job)  # (self._pairs is swapped by every flush)
                self._pairs.append(pair)
                self.stats.pending_pairs = len(self._pairs)
            except Exception:
                self.stats.failed += 1
                log.exception("shadow run for deployment %s failed", job.deployment.id)
            finally:
                queue.task_done()

    async def _turn(self) -> None:
        await self.foreground.turn()
        self.stats.forced_turns = self.foreground.forced

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            if self._pairs:
                await self._turn()
                await self._flush()

    async def _flush(self) -> None:
        async with self._flushing:
            batch, self._pairs = self._pairs, []
            if batch:
                # shielded: a flusher cancelled at shutdown still finishes and counts its batch
                self._writing = asyncio.ensure_future(asyncio.to_thread(self._store_batch, batch))
                await asyncio.shield(self._writing)
            self.stats.pending_pairs = len(self._pairs)

    def _store_batch(self, batch: list[Pair]) -> None:
        try:
            self._store.deployments.add_pairs(batch)
            self.stats.completed += len(batch)
        except Exception:
            self.stats.failed += len(batch)
            log.exception("storing %d shadowed pairs failed", len(batch))

    async def _run(self, job: MirrorJob) -> Pair:
        deployment = job.deployment
        version = job.candidate or deployment.candidate
        compiled = self._catalog.compiled(deployment.pipeline, version)
        context = RunContext(
            caller=job.caller,
            groups=job.groups,
            stream=job.stream,
            attributes={
                DEPLOYMENT_ID: deployment.id,
                ROLE: "shadow",
                STRATEGY: deployment.strategy.value,
                PAIR_ID: job.pair_id,
            },
        )
        started = time.perf_counter()
        shadow: RunResult | None = None
        error: str | None = None
        try:
            shadow = await self._runner.run(compiled, job.input, context)
        except KeelError as exc:
            error = exc.code
        latency = (time.perf_counter() - started) * 1000
        scores: tuple[float | None, float | None] = (None, None)
        if deployment.evaluator and self._evaluators is not None:
            await self._turn()
            scores = (
                await self._score(deployment, job.input, job.baseline),
                await self._score(deployment, job.input, shadow),
            )
        return Pair(
            deployment_id=deployment.id,
            pair_id=job.pair_id,
            at=datetime.now(UTC),
            baseline_trace_id=job.baseline.trace_id if job.baseline else None,
            candidate_trace_id=shadow.trace_id if shadow else None,
            candidate_version=version,
            baseline_score=scores[0],
            candidate_score=scores[1],
            baseline_latency_ms=job.baseline.latency_ms if job.baseline else None,
            candidate_latency_ms=shadow.latency_ms if shadow else latency,
            candidate_error=error,
        )

    async def _score(
        self, deployment: Deployment, data: Any, result: RunResult | None
    ) -> float | None:
        if result is None or not deployment.evaluator or self._evaluators is None:
            return None
        from keel.evals.evaluators.base import Case  # deferred: evals import a lot

        evaluator = self._built.get(deployment.evaluator)
        if evaluator is None:
            evaluator = self._built[deployment.evaluator] = self._evaluators(deployment.evaluator)
        case = Case(
            item=DatasetItem(item_id="shadow", input=data),
            output=result.output,
            text=result.text,
            decision=result.decision,
            latency_ms=result.latency_ms,
            cost_usd=result.cost_usd,
            usage=result.usage,
        )
        scores = [s for s in (await evaluator.evaluate(case)).scores.values() if s is not None]
        return sum(scores) / len(scores) if scores else None
