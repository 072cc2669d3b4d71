"""A real webhook receiver on an ephemeral loopback port, in its own thread and event loop.

It records every request (path, headers, JSON body) and answers with scripted statuses (then
200), optionally after a delay, so tests can exercise retries and timeouts; or it redirects
every request elsewhere, so tests can check that webhooks never follow a redirect.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web


class Receiver:
    def __init__(
        self, statuses: list[int] | None = None, delay_s: float = 0.0, redirect: str | None = None
    ) -> None:
        self.statuses = list(statuses or [])
        self.delay_s = delay_s
        self.redirect = redirect
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.port = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.paths.append(request.path)
        self.received.append(body)
        self.headers.append(dict(request.headers))
        if self.redirect is not None:
            raise web.HTTPTemporaryRedirect(self.redirect)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status < 300}, status=status)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def __enter__(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def receiver(
    statuses: list[int] | None = None, delay_s: float = 0.0, redirect: str | None = None
) -> Iterator[Receiver]:
    with Receiver(statuses, delay_s, redirect) as running:
        yield running
