"""Which pooled HTTP client the providers use: httpx, aiohttp and Keel's own HTTP/1.1
client (``keel.providers.http1``), side by side in one run.

Starts a minimal OpenAI-style upstream on loopback (aiohttp.web, a canned chat completion),
then drives it through each client at concurrency 1 and 16 for a fixed number of requests,
and prints requests/s, p50/p99 latency and the CPU time of this process per request (the
upstream runs in it too, so the differences between the rows are the clients'). aiohttp
beat httpx here (REFERENCE.md §2 found the same behind a FastAPI gateway); the providers now
use Keel's client, which spends less CPU per request than aiohttp's.

    python bench/http_clients.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import orjson
from aiohttp import web

from keel.providers.http1 import ConnectionPool

BODY = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
)
REQUEST = {"model": "mock", "messages": [{"role": "user", "content": "hello"}]}

Call = Callable[[], Awaitable[None]]


async def _upstream() -> tuple[web.AppRunner, str]:
    async def chat(_: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1/chat/completions"


async def _drive(call: Call, total: int, concurrency: int) -> tuple[float, float, list[float]]:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, time.process_time() - cpu, latencies


def _line(name: str, concurrency: int, elapsed: float, cpu: float, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return (
        f"  {name:<8} c={concurrency:<3} {len(ordered) / elapsed:>8,.0f} req/s   "
        f"p50 {statistics.median(ordered):.2f} ms   p99 {p99:.2f} ms   "
        f"cpu {cpu * 1000 / len(ordered):.3f} ms/req"
    )


async def main_async(total: int) -> None:
    runner, url = await _upstream()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(limits=limits) as hx,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session,
    ):

        async def via_httpx() -> None:
            response = await hx.post(url, content=orjson.dumps(REQUEST))
            orjson.loads(response.content)

        async def via_aiohttp() -> None:
            async with session.post(url, data=orjson.dumps(REQUEST)) as response:
                orjson.loads(await response.read())

        base, _, path = url.rpartition("/")
        keel = ConnectionPool(
            base,
            limit=64,
            connect_timeout=5,
            read_timeout=60,
            headers={"Content-Type": "application/json"},
        )

        async def via_keel() -> None:
            async with keel.post("/" + path, orjson.dumps(REQUEST), 120) as response:
                orjson.loads(await response.read())

        clients = (("httpx", via_httpx), ("aiohttp", via_aiohttp), ("keel", via_keel))
        print(f"pooled HTTP clients against a loopback mock, {total} requests each")
        for concurrency in (1, 16):
            for name, call in clients:
                await _drive(call, min(200, total), concurrency)  # warm the pool
                elapsed, cpu, latencies = await _drive(call, total, concurrency)
                print(_line(name, concurrency, elapsed, cpu, latencies))
        keel.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
