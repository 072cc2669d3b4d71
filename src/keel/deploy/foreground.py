"""Foreground requests, and a turn for background work that must never delay them.

The server counts the HTTP requests it is serving (``begin`` when one arrives, ``end`` once
its response has been sent). Background work on the same event loop (the shadow mirror)
asks for a :meth:`Foreground.turn` before each of its short CPU steps, and gets it when

* the event loop is idle: a ``sleep(0)`` comes back at once, twice in a row, so no other
  callback was ready to run; and
* either requests are in flight (so, with the loop idle, all of them are waiting on I/O,
  typically their model), or none has been served for ``quiet_s`` (so a caller that sends
  its next request right after an answer is not met by a background step).

Otherwise it checks again ``poll_s`` later. After ``max_wait_s`` the step runs anyway, so a
replica that is never idle still makes progress (the caller's queue bounds the backlog).
The counters are plain integers: the event loop is single-threaded.
"""

from __future__ import annotations

import asyncio
import time

IDLE_ROUND_TRIP_S = 0.0002  # a sleep(0) this fast means nothing else ran in between


class Foreground:
    __slots__ = ("_last", "active", "forced", "max_wait_s", "poll_s", "quiet_s")

    def __init__(
        self, *, quiet_s: float = 0.005, poll_s: float = 0.001, max_wait_s: float = 1.0
    ) -> None:
        self.active = 0
        self.forced = 0  # turns taken after max_wait_s without an idle moment
        self.quiet_s = quiet_s
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        self._last = time.monotonic()

    def begin(self) -> None:
        self.active += 1
        self._last = time.monotonic()

    def end(self) -> None:
        self.active -= 1
        self._last = time.monotonic()

    def _may_run(self) -> bool:
        return self.active > 0 or time.monotonic() - self._last >= self.quiet_s

    async def turn(self) -> None:
        """Return when a short background step would not hold up a foreground request."""
        deadline = time.monotonic() + self.max_wait_s
        while True:
            if self._may_run() and await _loop_idle() and await _loop_idle() and self._may_run():
                return
            if time.monotonic() >= deadline:
                self.forced += 1
                return
            await asyncio.sleep(self.poll_s)


async def _loop_idle() -> bool:
    started = time.perf_counter()
    await asyncio.sleep(0)
    return time.perf_counter() - started < IDLE_ROUND_TRIP_S
