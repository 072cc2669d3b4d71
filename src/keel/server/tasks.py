"""Scheduled work in the server: review timeouts, retention purges, fairness audits and
usage writes, each on its interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from keel.gateway.usage import UsageLedger
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

    tasks = [
        asyncio.create_task(every(settings.review_sweep_seconds, "review", runtime.reviews.sweep)),
        asyncio.create_task(every(settings.retention_sweep_seconds, "retention", purge)),
    ]
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
