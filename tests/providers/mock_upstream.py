"""A real HTTP upstream for provider tests: an aiohttp.web server on 127.0.0.1, port 0.

Each test scripts what a path answers (``upstream.script(path, *replies)``): replies are
used in order and the last one repeats. Every request is recorded with its headers, body
and client port, so tests can assert what a provider sent and whether it reused a pooled
connection. Reply builders cover success JSON, SSE streams in OpenAI and Anthropic styles,
error statuses with bodies and headers, slow answers, malformed bodies and cut connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

Reply = Callable[[web.Request, asyncio.Event], Awaitable[web.StreamResponse]]
"""Answers one request; the event is set when the server shuts down (ends waits early)."""

StreamEnd = Literal["eof", "cut", "hang"]


@dataclass(frozen=True)
class Received:
    """One request as the upstream saw it."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    client_port: int

    def json(self) -> Any:
        return json.loads(self.body)


class MockUpstream:
    """A scriptable HTTP server; start it inside the test's event loop."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer requests to ``path`` (e.g. ``/v1/chat/completions``) with ``replies``."""
        self._scripts[path] = list(replies)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            Received(
                method=request.method,
                path=request.path,
                headers={name.lower(): value for name, value in request.headers.items()},
                body=await request.read(),
                client_port=peer[1] if peer else 0,
            )
        )
        replies = self._scripts.get(request.path)
        if not replies:
            message = f"no reply scripted for {request.path}"
            return web.json_response({"error": {"message": message}}, status=404)
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return await reply(request, self._closing)


def json_reply(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON body with any status."""
    return raw_reply(json.dumps(body).encode(), status, headers=headers)


def raw_reply(
    body: bytes,
    status: int = 200,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Exact bytes, e.g. malformed JSON or an HTML error page."""

    async def reply(request: web.Request, closing: asyncio.Event) -> web.StreamResponse:
        response = web.Response(body=body, status=status, headers=dict(headers or {}))
        response.content_type = content_type
        return response

    return reply


def slow_reply(delay: float, then: Reply) -> Reply:
    """Wait ``delay`` seconds (or until shutdown) before answering with ``then``."""

    async def reply(request: web.Request, closing: asyncio.Event) -> web.StreamResponse:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), delay)
        return await then(request, closing)

    return reply


def truncated_reply(body: bytes, promised: int) -> Reply:
    """Promise ``promised`` bytes in Content-Length, send ``body``, then drop the connection."""

    async def reply(request: web.Request, closing: asyncio.Event) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = promised
        await response.prepare(request)
        await response.write(body)
        return _cut(request, response)

    return reply


def sse_reply(chunks: Iterable[bytes], *, end: StreamEnd = "eof", interval: float = 0.0) -> Reply:
    """Stream ``chunks`` as ``text/event-stream``, one write each, then end as told:
    ``eof`` closes the body cleanly, ``cut`` drops the connection mid-body, ``hang`` keeps
    it open, sending a comment every 50 ms until shutdown."""
    parts = list(chunks)

    async def reply(request: web.Request, closing: asyncio.Event) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in parts:
            await response.write(part)
            if interval:
                await asyncio.sleep(interval)
        if end == "cut":
            return _cut(request, response)
        while end == "hang" and not closing.is_set():
            await response.write(b": keep-alive\n\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), 0.05)
        await response.write_eof()
        return response

    return reply


def _cut(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    if request.transport is not None:
        request.transport.close()
    return response


def split_bytes(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of ``size`` bytes, to make a client reassemble events."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def openai_sse(chunks: Sequence[Mapping[str, Any]], *, done: bool = True) -> bytes:
    """An OpenAI-style stream: one ``data:`` event per chunk, then ``data: [DONE]``."""
    events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    if done:
        events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def anthropic_sse(events: Sequence[Mapping[str, Any]]) -> bytes:
    """An Anthropic-style stream: ``event: <type>`` plus ``data:`` per event."""
    return "".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events
    ).encode()


def openai_completion(text: str = "Hello!", **overrides: Any) -> dict[str, Any]:
    """A ``chat.completion`` object like OpenAI returns."""
    body: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    body.update(overrides)
    return body


def openai_chunks(
    pieces: Sequence[str], *, usage: bool = True, tool_calls: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """``chat.completion.chunk`` objects: a role chunk, one per piece, one per tool-call
    delta, finish, usage."""
    base = {
        "id": "chatcmpl-456",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_stream",
    }
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    chunks = [{**base, "choices": [first]}]
    chunks += [
        {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for piece in pieces
    ]
    chunks += [
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
        for call in tool_calls
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        tokens = {"prompt_tokens": 9, "completion_tokens": len(pieces), "total_tokens": 0}
        chunks.append({**base, "choices": [], "usage": tokens})
    return chunks


def anthropic_message(**overrides: Any) -> dict[str, Any]:
    """A Messages ``message`` object like Anthropic returns."""
    body: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 4},
    }
    body.update(overrides)
    return body


def anthropic_events(pieces: Sequence[str], *, stop: bool = True) -> list[dict[str, Any]]:
    """Messages stream events, ping included, optionally without ``message_stop``."""
    start = {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 25, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"output_tokens": 15},
        },
    ]
    if stop:
        events.append({"type": "message_stop"})
    return events
