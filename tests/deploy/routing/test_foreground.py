"""Background turns: shadow work on the event loop steps aside for foreground requests.

A foreground request is simulated on the loop itself: ``begin``, some steps, ``end``. A
runnable request is one that keeps the loop busy (``sleep(0)`` between CPU steps); a parked
request awaits a timer, as a request waiting on its model does."""

from __future__ import annotations

import asyncio
import time

import pytest

from keel.deploy.foreground import Foreground

pytestmark = pytest.mark.anyio


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def runnable_request(foreground: Foreground, steps: int, log: list[str]) -> None:
    foreground.begin()
    try:
        for _ in range(steps):
            spin(0.0005)
            await asyncio.sleep(0)
    finally:
        foreground.end()
        log.append("request done")


async def background(foreground: Foreground, log: list[str]) -> None:
    await foreground.turn()
    log.append("background ran")


async def test_no_turn_while_a_request_is_ready_to_run() -> None:
    foreground, log = Foreground(quiet_s=0.0), []
    request = asyncio.create_task(runnable_request(foreground, 40, log))
    await asyncio.sleep(0)  # the request has begun
    await asyncio.gather(background(foreground, log), request)
    assert log == ["request done", "background ran"]
    assert foreground.forced == 0


async def test_a_turn_while_requests_wait_on_io() -> None:
    foreground, log = Foreground(quiet_s=10.0), []  # never quiet: only parking allows a turn

    async def parked() -> None:
        foreground.begin()
        try:
            await asyncio.sleep(0.3)  # waiting on its model
        finally:
            foreground.end()
            log.append("request done")

    request = asyncio.create_task(parked())
    await asyncio.sleep(0)
    await asyncio.gather(background(foreground, log), request)
    assert log == ["background ran", "request done"]


async def test_no_turn_right_after_an_answer_until_quiet() -> None:
    foreground = Foreground(quiet_s=0.05)
    foreground.begin()
    foreground.end()  # an answer just went out; the caller's next request may follow at once
    ended = time.monotonic()
    await foreground.turn()
    assert time.monotonic() - ended >= 0.05
    assert foreground.forced == 0


async def test_a_loop_never_idle_still_gets_a_turn_after_the_longest_wait() -> None:
    foreground, log = Foreground(quiet_s=0.0, max_wait_s=0.05), []
    request = asyncio.create_task(runnable_request(foreground, 400, log))
    await asyncio.sleep(0)
    await background(foreground, log)
    assert log == ["background ran"]  # forced before the busy request finished
    assert foreground.forced == 1
    await request
