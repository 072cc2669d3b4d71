"""Scheduled work in the server: review timeouts, retention purges and fairness audits, each
on its interval."""

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
from keel.retention import apply_retention
from keel.runtime import Runtime
from keel.settings import FairnessSchedule

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


@contextlib.asynccontextmanager
async def scheduled_tasks(runtime: Runtime) -> AsyncIterator[None]:
    settings = runtime.settings.guardrails

    async def purge() -> object:
        default = settings.default_retention_days
        return await asyncio.to_thread(apply_retention, runtime.store, default)

    tasks = [
        asyncio.create_task(every(settings.review_sweep_seconds, "review", runtime.reviews.sweep)),
        asyncio.create_task(every(settings.retention_sweep_seconds, "retention", purge)),
    ]
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
