"""A small HTTP/1.1 client for model upstreams: keep-alive connections per endpoint over
asyncio, responses parsed by ``httptools`` (llhttp, the parser uvicorn serves with).

Model calls are one shape: ``POST`` a JSON body to one base URL, read a JSON answer or a
stream of Server-Sent Events. ``aiohttp``'s client did this at about a fifth of the
gateway's CPU per request (request and response objects, header multidicts, cookie jar,
tracing signals, a timer per read); this client writes each request in one call and keeps
a response's status, headers and body chunks on the connection that read them.

Failures are its own exceptions, which :mod:`keel.providers.http` translates:
:class:`ConnectTimeout`, :class:`ReadTimeout` and :class:`TotalTimeout` (``TimeoutError``
subclasses), :class:`ConnectFailed` (nothing was sent) and :class:`Disconnected` (the
connection broke or the answer was not valid HTTP). The total timeout is a deadline each
wait honours, not a cancellation of the caller's task, so a stream consumed between reads
is never interrupted outside the client.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httptools

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class ConnectTimeout(TimeoutError):
    """No connection within the connect timeout."""


class ReadTimeout(TimeoutError):
    """No bytes from the upstream within the read timeout."""


class TotalTimeout(TimeoutError):
    """The call did not finish within its total timeout."""


class ConnectFailed(ConnectionError):
    """The connection could not be opened; nothing was sent."""


class Disconnected(ConnectionError):
    """The connection broke, or the upstream did not answer in HTTP/1.1."""


class Response:
    """Status and headers (names lower-cased) of an answer; the body is read from it."""

    __slots__ = ("_connection", "_decoder", "headers", "status")

    def __init__(self, connection: _Connection, status: int, headers: dict[str, str]) -> None:
        self._connection = connection
        self.status = status
        self.headers = headers
        wbits = _DECODERS.get(headers.get("content-encoding", "identity").lower())
        self._decoder = zlib.decompressobj(wbits) if wbits is not None else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while (chunk := await self.next_chunk()) is not None:
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def next_chunk(self) -> bytes | None:
        """The body bytes that arrived since the last call (waiting for some), decompressed
        when the upstream compressed them; ``None`` at the end of the body."""
        decoder = self._decoder
        while True:
            chunk = await self._connection.next_chunk()
            if decoder is None:
                return chunk
            if chunk is None:
                self._decoder = None
                return decoder.flush() or None
            chunk = decoder.decompress(chunk)
            if chunk:
                return chunk

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (see :meth:`next_chunk`)."""
        while (chunk := await self.next_chunk()) is not None:
            yield chunk


class _Connection(asyncio.Protocol):
    """One keep-alive connection; reads one response at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self._loop = loop
        self._read_timeout = read_timeout
        self._parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.closed = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._chunks: list[bytes] = []
        self._headers: dict[str, str] = {}
        self._header_name = ""
        self._status = 0
        self._headers_done = False
        self._complete = False
        self._keep_alive = False
        self._deadline = 0.0

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Disconnected(f"the upstream's answer is not valid HTTP/1.1 ({exc})"))
            self.transport.close()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._headers_done and exc is None and _ends_at_close(self._headers):
            self._complete = True  # a body without a length ends when the connection does
        if not self._complete:
            reason = f" ({exc})" if exc is not None else ""
            self._fail(Disconnected(f"the upstream closed the connection{reason}"))
        self._wake()

    # --- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        self._headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()  # llhttp forgets it at the end
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._complete = True

    # --- the client's side -----------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        """Until the parser made progress or the connection ended; ``ReadTimeout`` if
        nothing arrives within the read timeout, ``TotalTimeout`` at the deadline."""
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        left = self._deadline - loop.time()
        if left < self._read_timeout:
            timer = loop.call_later(max(0.0, left), _expire, waiter, TotalTimeout)
        else:
            timer = loop.call_later(self._read_timeout, _expire, waiter, ReadTimeout)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def request(self, head: bytes, body: bytes, deadline: float) -> Response:
        """Send one request and return its answer once the headers arrived; every wait for
        this answer ends by ``deadline`` (loop time)."""
        self._deadline = deadline
        self._headers = {}
        self._headers_done = self._complete = self._keep_alive = False
        self._chunks = []
        self.transport.write(head + body)
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()
        return Response(self, self._status, self._headers)

    async def next_chunk(self) -> bytes | None:
        """Body bytes received so far (waiting for some), or ``None`` at the end."""
        while not self._chunks:
            if self._complete:
                return None
            if self._error is not None:
                raise self._error
            await self._wait()
        chunks, self._chunks = self._chunks, []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @property
    def reusable(self) -> bool:
        return self._complete and not self.closed and self._error is None and self._keep_alive


def _expire(waiter: asyncio.Future[None], kind: type[TimeoutError]) -> None:
    if not waiter.done():
        waiter.set_exception(kind())


def _ends_at_close(headers: Mapping[str, str]) -> bool:
    return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "")


class ConnectionPool:
    """Keep-alive connections to one ``http(s)://host:port``, at most ``limit`` at a time.

    ``post`` is an async context manager yielding the :class:`Response`; the connection
    goes back to the pool when the whole answer has arrived (even if the caller stopped
    reading it, or raised), and is closed otherwise.
    """

    def __init__(
        self,
        base_url: str,
        *,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
        headers: Mapping[str, str],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context`` verifies an https upstream; the default trusts the system's
        certificate authorities and checks the host name."""
        parts = urlsplit(base_url)
        self._secure = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._secure else 80)
        self._path = parts.path.rstrip("/")
        default_port = self._port == (443 if self._secure else 80)
        authority = self._host if default_port else f"{self._host}:{self._port}"
        if ":" in self._host:  # an IPv6 literal
            authority = f"[{self._host}]" if default_port else f"[{self._host}]:{self._port}"
        lines = [f"Host: {authority}", "Connection: keep-alive"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._fixed = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Connection] = []
        self._ssl = ssl_context
        self._closed = False

    def post(self, path: str, body: bytes, timeout: float) -> _Exchange:
        """``POST`` ``body`` to the base URL's path + ``path``, all within ``timeout`` s."""
        head = b"POST %s HTTP/1.1\r\nContent-Length: %d\r\n%s\r\n" % (
            (self._path + path).encode("latin-1"),
            len(body),
            self._fixed,
        )
        deadline = asyncio.get_running_loop().time() + timeout
        return _Exchange(self, head, body, deadline)

    async def acquire(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._slots.locked():  # wait for a free connection, until the deadline
            try:
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise TotalTimeout() from exc
        else:
            await self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed and not connection.transport.is_closing():
                    return connection
            return await self._connect(loop, deadline)
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: _Connection, reuse: bool) -> None:
        self._slots.release()
        if reuse and connection.reusable and not self._closed:
            self._idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        context = None
        if self._secure:
            context = self._ssl = self._ssl or ssl.create_default_context()
        left = deadline - loop.time()
        try:
            async with asyncio.timeout(max(0.0, min(left, self._connect_timeout))):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self._read_timeout),
                    self._host,
                    self._port,
                    ssl=context,
                    server_hostname=self._host if context is not None else None,
                )
        except TimeoutError as exc:
            raise (TotalTimeout() if left < self._connect_timeout else ConnectTimeout()) from exc
        except OSError as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        return connection

    def close(self) -> None:
        """Close the idle connections; those in use close when they are released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            if connection.transport is not None:
                connection.transport.close()


class _Exchange:
    """``async with pool.post(path, body) as response``: one request on a pooled connection."""

    __slots__ = ("_body", "_connection", "_deadline", "_head", "_pool")

    def __init__(self, pool: ConnectionPool, head: bytes, body: bytes, deadline: float) -> None:
        self._pool = pool
        self._head = head
        self._body = body
        self._deadline = deadline
        self._connection: _Connection | None = None

    async def __aenter__(self) -> Response:
        connection = self._connection = await self._pool.acquire(self._deadline)
        try:
            return await connection.request(self._head, self._body, self._deadline)
        except BaseException:
            self._connection = None
            self._pool.release(connection, reuse=False)
            raise

    async def __aexit__(self, *exc: object) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:  # reused only if its answer was read to the end
            self._pool.release(connection, reuse=True)
