"""Live changes: every replica re-reads the active deployments as soon as one changes.

The store is the source of truth; announcements only say "re-read now":

* Redis pub/sub on ``deploy.channel`` when ``KEEL_REDIS_URL`` is set (the API, the CLI and
  the controller publish after each committed change);
* Postgres ``LISTEN keel_deployments`` when the store is Postgres (the store sends
  ``NOTIFY`` inside the transaction, so it arrives exactly when the change commits);
* polling every ``deploy.poll_seconds`` while no announcement channel is connected, and
  every ``deploy.resync_seconds`` anyway, in case a message was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from keel.deploy.router import DeploymentRouter
from keel.settings import DeploySettings
from keel.store import Store
from keel.store.deployments import NOTIFY_CHANNEL

log = logging.getLogger("keel.deploy")
_RECONNECT_S = 1.0


class DeploymentWatcher:
    """Keeps a router's table in step with the store."""

    def __init__(
        self,
        store: Store,
        router: DeploymentRouter,
        settings: DeploySettings,
        *,
        redis: Any = None,
    ) -> None:
        self._store = store
        self._router = router
        self._settings = settings
        self._redis = redis
        self._wake = asyncio.Event()
        self._connected = 0  # announcement channels currently listening
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pushed(self) -> bool:
        return self._connected > 0

    def poke(self, _pipeline: str = "") -> None:
        """Re-read soon; safe to call from any thread (the API's sync handlers)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def refresh(self) -> list[str]:
        read_at = time.monotonic()
        active = await asyncio.to_thread(self._store.deployments.all_active)
        changed = self._router.install(active, read_at)
        if changed:
            log.info("deployment changes applied for %s", ", ".join(changed))
        return changed

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        await self.refresh()
        tasks = [asyncio.create_task(self._poll())]
        if self._redis is not None:
            tasks.append(asyncio.create_task(self._listen(self._redis_messages)))
        if self._store.engine.dialect.name == "postgresql":
            tasks.append(asyncio.create_task(self._listen(self._postgres_messages)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._loop = None

    async def _poll(self) -> None:
        while True:
            wait = self._settings.resync_seconds if self.pushed else self._settings.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:  # the store may be briefly unreachable; keep the last table
                log.exception("could not re-read the active deployments")

    async def _listen(self, messages: Callable[[], AsyncIterator[None]]) -> None:
        while True:
            try:
                async for _ in messages():
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # fall back to polling until the channel is back
                log.warning("deployment announcements interrupted (%s); polling meanwhile", exc)
            await asyncio.sleep(_RECONNECT_S)

    async def _redis_messages(self) -> AsyncIterator[None]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._settings.channel)
        self._connected += 1
        self._wake.set()  # catch up on anything announced while not subscribed
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield None
        finally:
            self._connected -= 1
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _postgres_messages(self) -> AsyncIterator[None]:
        import psycopg  # deferred: only Postgres stores listen

        url = self._store.engine.url.set(drivername="postgresql")
        conn = await psycopg.AsyncConnection.connect(
            url.render_as_string(hide_password=False), autocommit=True
        )
        try:
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._connected += 1
            self._wake.set()
            try:
                async for _ in conn.notifies():
                    yield None
            finally:
                self._connected -= 1
        finally:
            await conn.close()


class RedisAnnouncer:
    """Publishes "pipeline NAME changed" after a committed change (sync: API handlers and
    the CLI run outside the event loop)."""

    def __init__(self, url: str, channel: str) -> None:
        import redis  # deferred: only replicas sharing state need it

        self._client = redis.Redis.from_url(url)
        self._channel = channel

    def __call__(self, pipeline: str) -> None:
        try:
            self._client.publish(self._channel, pipeline)
        except Exception as exc:  # the change is stored; replicas still poll it
            log.warning("could not announce the change of %s on Redis: %s", pipeline, exc)

    def close(self) -> None:
        self._client.close()


def announcers(*notify: Callable[[str], None] | None) -> Callable[[str], None]:
    """One callback calling each given one."""
    chosen = [n for n in notify if n is not None]

    def announce(pipeline: str) -> None:
        for each in chosen:
            each(pipeline)

    return announce
