"""A fast mock OpenAI upstream: a bare asyncio HTTP/1.1 server (keep-alive) answering
``POST /v1/chat/completions`` with a fixed completion, or an SSE stream when the body asks
for one. It does as little as possible so that it never is the bottleneck.

    python bench/gateway/mock_openai.py PORT
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the mock."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
)
PLAIN = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(COMPLETION)).encode()
    + b"\r\n\r\n"
    + COMPLETION
)


def _chunk(delta: dict[str, object], finish: str | None = None, usage: bool = False) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    return b"data: " + orjson.dumps(body) + b"\n\n"


EVENTS = (
    _chunk({"role": "assistant", "content": ""})
    + b"".join(_chunk({"content": word}) for word in ("Hello ", "from ", "the ", "mock", "."))
    + _chunk({}, "stop")
    + _chunk({}, usage=True)
    + b"data: [DONE]\n\n"
)
STREAM = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
    + str(len(EVENTS)).encode()
    + b"\r\n\r\n"
    + EVENTS
)


class MockProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                line_end = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : line_end if line_end > 0 else None])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            streaming = b'"stream":true' in body.replace(b" ", b"")
            self.transport.write(STREAM if streaming else PLAIN)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(int(sys.argv[1])))
