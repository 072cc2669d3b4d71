"""Scheduled work in the server: review timeouts and retention purges, each on its interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from keel.retention import apply_retention
from keel.runtime import Runtime

log = logging.getLogger("keel.tasks")


async def every(seconds: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:  # keep going: one bad tick must not stop the task
            log.exception("scheduled task %s failed", name)


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
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
