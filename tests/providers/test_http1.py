"""The HTTP/1.1 client against real loopback sockets: bodies by length, chunks, close and
gzip; keep-alive reuse and its limits; read, total and connect timeouts; broken answers."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from keel.providers.http1 import (
    ConnectFailed,
    ConnectionPool,
    Disconnected,
    ReadTimeout,
    TotalTimeout,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def upstream(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A raw TCP server on 127.0.0.1; yields its base URL and the client ports it saw."""
    ports: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ports.append(writer.get_extra_info("peername")[1])
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", ports
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's body (by Content-Length), or None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


def answer(body: bytes, *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def pool(url: str, **options: float) -> ConnectionPool:
    return ConnectionPool(
        url,
        limit=int(options.pop("limit", 4)),
        connect_timeout=options.pop("connect", 2.0),
        read_timeout=options.pop("read", 2.0),
        headers={"Content-Type": "application/json"},
    )


async def post(client: ConnectionPool, body: bytes = b"{}") -> bytes:
    async with client.post("/chat/completions", body, 5.0) as response:
        assert response.status == 200
        return await response.read()


async def test_keep_alive_reuses_one_connection_and_sends_the_path_and_body() -> None:
    seen: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (body := await read_request(reader)) is not None:
            seen.append(body)
            writer.write(answer(b'{"ok": ' + body + b"}"))

    async with upstream(echo) as (url, ports):
        client = pool(url)
        assert await post(client, b"1") == b'{"ok": 1}'
        assert await post(client, b"2") == b'{"ok": 2}'
        client.close()
    assert seen == [b"1", b"2"]
    assert len(ports) == 1


async def test_the_limit_makes_concurrent_calls_share_connections() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            await asyncio.sleep(0.02)
            writer.write(answer(b"{}"))

    async with upstream(slow) as (url, ports):
        client = pool(url, limit=1)
        await asyncio.gather(*(post(client) for _ in range(4)))
    assert len(ports) == 1


async def test_chunked_gzip_and_until_close_bodies_are_read_whole() -> None:
    packed = gzip.compress(b'{"text": "hello"}')

    async def varied(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (body := await read_request(reader)) is not None:
            if body == b"chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                writer.write(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
            elif body == b"gzip":
                writer.write(answer(packed, "Content-Encoding: gzip"))
            else:  # no length: the body ends with the connection
                writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
                await writer.drain()
                return

    async with upstream(varied) as (url, ports):
        client = pool(url)
        assert await post(client, b"chunked") == b"abcdef"
        assert await post(client, b"gzip") == b'{"text": "hello"}'
        assert await post(client, b"close") == b"until the end"
        assert await post(client, b"chunked") == b"abcdef"  # on a new connection
        client.close()
    assert len(ports) == 2  # the body that ended with its connection took it along


async def test_a_connection_the_upstream_closed_while_idle_is_replaced() -> None:
    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()

    async with upstream(one_each) as (url, ports):
        client = pool(url)
        await post(client)
        await asyncio.sleep(0.05)  # the server closed it meanwhile
        await post(client)
    assert len(ports) == 2


async def test_silence_after_the_headers_is_a_read_timeout() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await asyncio.sleep(1)

    async with upstream(stalls) as (url, _):
        with pytest.raises(ReadTimeout):
            await post(pool(url, read=0.1))


async def test_a_trickling_stream_ends_at_the_total_timeout_without_cancelling_the_caller() -> None:
    async def trickles(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(50):
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.02)

    received: list[bytes] = []

    async def consume(client: ConnectionPool) -> None:
        async with client.post("/chat/completions", b"{}", 0.2) as response:
            async for chunk in response.iter_chunks():
                received.append(chunk)
                await asyncio.sleep(0.01)  # the caller's own awaits are not cut short

    async with upstream(trickles) as (url, _):
        with pytest.raises(TotalTimeout):
            await consume(pool(url, read=1.0))
    assert 2 <= len(b"".join(received)) < 50


async def test_an_answer_that_is_not_http_is_a_disconnect() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    async with upstream(garbage) as (url, _):
        with pytest.raises(Disconnected, match="not valid HTTP"):
            await post(pool(url))


async def test_a_connection_dropped_mid_body_is_a_disconnect() -> None:
    async def drops(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async with upstream(drops) as (url, _):
        with pytest.raises(Disconnected, match="closed the connection"):
            await post(pool(url))


async def test_nothing_listening_is_a_connect_failure() -> None:
    async with upstream(read_request) as (url, _):
        pass  # closed again: nothing listens on that port now
    with pytest.raises(ConnectFailed):
        await post(pool(url))


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_an_https_upstream_is_verified_and_answers(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)

    async def secure(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (body := await read_request(reader)) is not None:
            writer.write(answer(b"secret " + body))
        writer.close()

    server = await asyncio.start_server(secure, "127.0.0.1", 0, ssl=served)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        client = ConnectionPool(
            url, limit=2, connect_timeout=5, read_timeout=5, headers={}, ssl_context=trusting
        )
        assert await post(client, b"1") == b"secret 1"
        assert await post(client, b"2") == b"secret 2"
        client.close()
        with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await post(pool(url))  # the system's authorities do not know this certificate
    finally:
        server.close()


async def test_a_connection_in_use_when_the_pool_closes_is_closed_on_release() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            writer.write(answer(b"{}"))

    async with upstream(echo) as (url, _):
        client = pool(url)
        async with client.post("/chat/completions", b"{}", 5.0) as response:
            client.close()
            assert await response.read() == b"{}"
            transport = response._connection.transport
        assert transport.is_closing()
