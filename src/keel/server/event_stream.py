"""A Server-Sent Events response that writes the events which arrive together in one write.

An upstream often delivers several events in one network read (a fast model, or a batch a
proxy held back). Starlette's ``StreamingResponse`` sends each piece as its own ASGI message,
so each becomes a chunk and a socket write of its own, and it watches for a disconnect with
an anyio task group per response. :class:`EventStream` instead pulls the events in a producer
task that appends them to a batch; the response coroutine sends whatever the batch holds each
time it gets the loop, so events produced without waiting on I/O go out in one write (the
last batch carries the end of the body too). Nothing is held back: the first event of every
read is sent as soon as the producer waits for the next one.

A disconnect (the ASGI ``http.disconnect`` message) cancels the producer at once, which
closes the upstream stream; an error raised by the producer propagates as it would from
``StreamingResponse``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class EventStream(StreamingResponse):
    """``text/event-stream`` from an async iterator of encoded events."""

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        events = self.body_iterator
        assert isinstance(events, AsyncIterator)
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        relay = _Relay(events)
        loop = asyncio.get_running_loop()
        producer = loop.create_task(relay.produce())
        listener = loop.create_task(_disconnected(receive))
        listener.add_done_callback(lambda _: producer.cancel())
        try:
            while True:
                body, finished = await relay.take()
                if finished:
                    break
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if producer.cancelled():  # the client went away
                return
            failed = producer.exception()
            await send(
                {"type": "http.response.body", "body": body, "more_body": failed is not None}
            )
            if failed is not None:
                raise failed
        finally:
            producer.cancel()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
            with contextlib.suppress(asyncio.CancelledError):
                await listener


class _Relay:
    """The batch between the producer task and the response coroutine."""

    __slots__ = ("_batch", "_events", "_finished", "_wake")

    def __init__(self, events: AsyncIterator[str | bytes]) -> None:
        self._events = events
        self._batch: list[bytes] = []
        self._finished = False
        self._wake: asyncio.Future[None] | None = None

    async def produce(self) -> None:
        try:
            async for piece in self._events:
                self._batch.append(piece if isinstance(piece, bytes) else piece.encode())
                self._notify()
        finally:
            self._finished = True
            self._notify()

    def _notify(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def take(self) -> tuple[bytes, bool]:
        """What the producer made since the last call (waiting until it made something or
        ended), and whether it has ended."""
        if not self._batch and not self._finished:
            self._wake = asyncio.get_running_loop().create_future()
            await self._wake
        batch, self._batch = self._batch, []
        return b"".join(batch), self._finished


async def _disconnected(receive: Receive) -> None:
    """Return when the client has gone (or the server ends the response)."""
    while (await receive())["type"] != "http.disconnect":
        pass
