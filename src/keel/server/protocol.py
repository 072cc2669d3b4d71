"""uvicorn's httptools protocol with the writes of one event-loop step sent together.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two transport
writes, and uvloop sends each at once, so a plain JSON answer costs two ``write`` system
calls (and two TCP segments, waking the client twice). :class:`CoalescingWrites` stands
between the protocol and the transport: it keeps what is written during one step of the
event loop and sends it in one write at the start of the next step (``call_soon``), so a
response whose head and body are sent back to back leaves in one system call. A stream's
events leave as they did, one write per step; nothing waits longer than one step.

Closing, aborting and ``write_eof`` send what is kept first (abort drops it, as the
transport's own abort drops its buffer); every other transport method passes through.

Serve with ``uvicorn.run(app, http=CoalescingHttpToolsProtocol)``: the server process
(``keel serve``) and the test servers do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingWrites:
    """A transport whose writes made in one loop step reach the wrapped one as one write."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    @property
    def wrapped(self) -> asyncio.Transport:
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        pending = self._pending
        if not pending:
            self._loop.call_soon(self.flush)
        pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what was kept, in one write."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        kept = sum(len(data) for data in self._pending)
        return kept + int(self._transport.get_write_buffer_size())

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through :class:`CoalescingWrites`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingWrites(transport, self.loop)
        super().connection_made(coalescing)
