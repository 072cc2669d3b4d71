"""The SSE response: events that come together leave in one write; a disconnect stops it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from keel.server.event_stream import EventStream

SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


class Client:
    """The ASGI side: records what is sent; ``receive`` waits until told to disconnect."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))

    async def receive(self) -> Any:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    @property
    def bodies(self) -> list[tuple[bytes, bool]]:
        return [(m["body"], m["more_body"]) for m in self.sent if m["type"] == "http.response.body"]


def test_events_produced_together_go_out_in_one_write() -> None:
    async def events() -> AsyncIterator[bytes]:
        for piece in (b"a", b"b", b"c"):  # as from one network read
            yield piece
        await asyncio.sleep(0.01)  # the next read
        yield b"d"
        await asyncio.sleep(0.01)
        yield b"e"
        yield b"f"

    client = Client()
    asyncio.run(EventStream(events())(SCOPE, client.receive, client.send))
    assert client.sent[0]["type"] == "http.response.start"
    assert dict(client.sent[0]["headers"])[b"content-type"].startswith(b"text/event-stream")
    assert client.bodies == [(b"abc", True), (b"d", True), (b"ef", False)]


def test_a_disconnect_stops_pulling_events_and_closes_the_source() -> None:
    closed = asyncio.Event()

    async def run() -> Client:
        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"first"
                await asyncio.sleep(60)  # an upstream that stalls
                yield b"never"
            finally:
                closed.set()

        client = Client()
        asyncio.get_running_loop().call_later(0.05, client.gone.set)
        await asyncio.wait_for(EventStream(events())(SCOPE, client.receive, client.send), 5)
        return client

    client = asyncio.run(run())
    assert closed.is_set()
    assert client.bodies == [(b"first", True)]


def test_an_error_in_the_source_is_raised_after_what_came_before() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("upstream bug")

    client = Client()
    with pytest.raises(RuntimeError, match="upstream bug"):
        asyncio.run(EventStream(events())(SCOPE, client.receive, client.send))
    assert client.bodies == [(b"partial", True)]
