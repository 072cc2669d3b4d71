"""A bare pass-through proxy, the calibration row of the gateway benchmark.

It does what any Python gateway must do at the least, and nothing else: accept
``POST /v1/chat/completions`` on an ``aiohttp.web`` server (uvloop when installed), forward the
body unchanged to the upstream over one pooled ``aiohttp.ClientSession``, and send the answer
back (a plain body whole, an SSE stream chunk by chunk as it arrives). No auth, no parsing, no
tracing, no metrics: its CPU per request is the floor a gateway in Python reaches on this
machine, measured in the same run as Keel.

    python bench/gateway/bare_proxy.py PORT UPSTREAM_BASE_URL
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

_SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
_UPSTREAM: web.AppKey[str] = web.AppKey("upstream", str)
_FORWARDED = ("authorization", "content-type")


async def chat(request: web.Request) -> web.StreamResponse:
    session = request.app[_SESSION]
    body = await request.read()
    headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    url = request.app[_UPSTREAM] + "/chat/completions"
    async with session.post(url, data=body, headers=headers) as upstream:
        kind = upstream.headers.get("content-type", "application/json")
        if not kind.startswith("text/event-stream"):
            return web.Response(
                body=await upstream.read(), status=upstream.status, content_type=kind
            )
        response = web.StreamResponse(
            status=upstream.status,
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
        )
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[_SESSION] = session
        yield


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    app[_UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(_session)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2]
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(make_app(upstream), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
