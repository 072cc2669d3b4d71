"""An asyncio load generator (aiohttp client, keep-alive): ``concurrency`` workers send
requests back to back for ``seconds`` and record each latency (a stream's latency is until
its last byte).

``body`` is either fixed bytes or a function of the request's sequence number, so each
request can differ (the gateway's response cache then looks every request up and misses,
which is the cost a cache-enabled gateway pays on fresh traffic).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

Body = bytes | Callable[[int], bytes]


@dataclass
class Result:
    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(
    url: str,
    body: Body,
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    max_requests: int | None = None,
) -> Result:
    latencies: list[float] = []
    errors = 0
    numbers = itertools.count()
    make = body if callable(body) else (lambda _n: body)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                number = next(numbers)
                if max_requests is not None and number >= max_requests:
                    return
                data = make(number)
                started = time.perf_counter()
                try:
                    async with session.post(url, data=data) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(latencies, errors, elapsed)
