"""Scheduled work in the server: review timeouts, retention purges, fairness audits, alert
evaluation (SLO burn rates, drift monitors and other conditions), golden-set evaluations and
usage writes, each on its interval; and the worker that takes sampled production traffic off
the request path (sampled review intake, online evaluation)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from keel.deploy.controller import RolloutController
from keel.deploy.live import DeploymentWatcher, RedisAnnouncer, announcers
from keel.deploy.service import DeploymentService
from keel.gateway.usage import UsageLedger
from keel.retention import apply_retention
from keel.runtime import Runtime
from keel.settings import FairnessSchedule, GoldenSchedule

log = logging.getLogger("keel.tasks")


async def every(seconds: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:  # keep going: one bad tick must not stop the task
            log.exception("scheduled task %s failed", name)


def fairness_audit(runtime: Runtime, schedule: FairnessSchedule) -> Callable[[], Awaitable[object]]:
    """One scheduled counterfactual audit; its report is stored with its eval run."""

    async def audit() -> object:
        from keel.evals.audit import run_fairness  # deferred: pulls in scipy
        from keel.evals.fairness import DEFAULT_TERMS

        run, report = await run_fairness(
            runtime,
            schedule.pipeline,
            schedule.dataset,
            dict(DEFAULT_TERMS),
            metric=schedule.metric,
            evaluators=schedule.evaluators,
            repeats=schedule.repeats,
        )
        log.info("fairness audit of %s stored as eval run %s", schedule.pipeline, run.run_id)
        return report

    return audit


def golden_run(runtime: Runtime, schedule: GoldenSchedule) -> Callable[[], Awaitable[object]]:
    """One scheduled golden-set evaluation; its verdict goes to the alert engine."""

    async def run() -> object:
        from keel.drift.golden import golden_check  # deferred: pulls in scipy

        signal = await golden_check(runtime, schedule)
        await runtime.monitoring.engine.report([signal])
        log.info("golden run: %s", signal.summary)
        return signal

    return run


async def flush_usage(ledger: UsageLedger) -> None:
    """Write the summed usage; a store failure is logged and the sums kept for next time."""
    try:
        await ledger.flush()
    except Exception:
        log.exception("could not write usage to the store; it is kept for the next write")


@contextlib.asynccontextmanager
async def scheduled_tasks(
    runtime: Runtime, ledger: UsageLedger | None = None
) -> AsyncIterator[None]:
    settings = runtime.settings.guardrails

    async def purge() -> object:
        default = settings.default_retention_days
        return await asyncio.to_thread(apply_retention, runtime.store, default)

    runtime.sampler.start()
    tasks = [
        asyncio.create_task(runtime.sampler.run()),
        asyncio.create_task(every(settings.review_sweep_seconds, "review", runtime.reviews.sweep)),
        asyncio.create_task(every(settings.retention_sweep_seconds, "retention", purge)),
    ]
    monitoring = runtime.settings.monitoring
    engine = runtime.monitoring.engine
    tasks.append(asyncio.create_task(every(monitoring.evaluate_seconds, "alerts", engine.tick)))
    for golden in monitoring.golden:
        name = f"golden {golden.pipeline}"
        tasks.append(
            asyncio.create_task(every(golden.interval_seconds, name, golden_run(runtime, golden)))
        )
    if ledger is not None:
        seconds = runtime.settings.gateway.usage_flush_seconds
        tasks.append(asyncio.create_task(every(seconds, "usage", ledger.flush)))
    for schedule in runtime.settings.evals.fairness_schedules:
        job = fairness_audit(runtime, schedule)
        name = f"fairness {schedule.pipeline}"
        tasks.append(asyncio.create_task(every(schedule.interval_seconds, name, job)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def deployments_live(app: Any) -> AsyncIterator[None]:
    """The deployment service on ``app.state.deployments``, the watcher keeping this
    replica's routing table current, and the shadow mirror's workers."""
    runtime: Runtime = app.state.runtime
    settings = runtime.settings
    watcher = DeploymentWatcher(
        runtime.store, runtime.router, settings.deploy, redis=app.state.redis
    )
    redis = (
        RedisAnnouncer(settings.redis_url, settings.deploy.channel) if settings.redis_url else None
    )

    def apply_here(_pipeline: str) -> None:  # read your own writes: this replica at once
        read_at = time.monotonic()
        runtime.router.install(runtime.store.deployments.all_active(), read_at)

    service = DeploymentService(runtime.store, announcers(apply_here, redis))
    app.state.deployments = service
    app.state.controller = RolloutController(runtime.store, service, settings.deploy)
    tasks = []
    if settings.deploy.controller:

        async def control() -> object:
            return await asyncio.to_thread(app.state.controller.run_once)

        seconds = settings.deploy.controller_seconds
        tasks.append(asyncio.create_task(every(seconds, "rollout controller", control)))
    try:
        async with watcher.running(), runtime.shadow.running():
            yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if redis is not None:
            redis.close()
