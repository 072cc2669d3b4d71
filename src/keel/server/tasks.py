"""Scheduled work in the server: review timeouts, retention purges and fairness audits, each
on its interval; and the worker that takes sampled production traffic off the request path
(sampled review intake, online evaluation)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

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

    runtime.sampler.start()
    tasks = [
        asyncio.create_task(runtime.sampler.run()),
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
