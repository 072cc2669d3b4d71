"""Writes made in one event-loop step leave in one transport write; closing sends what is
kept first, aborting drops it. (Every live-server test serves through this protocol.)"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn

from keel.server.protocol import CoalescingHttpToolsProtocol, CoalescingWrites


class Recording:
    """The few transport methods the wrapper calls, recording what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def wrap() -> tuple[CoalescingWrites, Recording]:
    recording = Recording()
    return CoalescingWrites(recording, asyncio.get_running_loop()), recording  # type: ignore[arg-type]


def test_writes_of_one_step_leave_together_at_the_next() -> None:
    async def scenario() -> list[bytes]:
        transport, recording = wrap()
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        transport.writelines([b"{", b"}"])
        assert recording.writes == []
        assert transport.get_write_buffer_size() == 21
        await asyncio.sleep(0)
        transport.write(b"next")
        await asyncio.sleep(0)
        return recording.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"next"]


def test_close_sends_what_is_kept_and_abort_drops_it() -> None:
    async def scenario() -> tuple[Recording, Recording]:
        closing, closed = wrap()
        closing.write(b"last words")
        closing.close()
        aborting, aborted = wrap()
        aborting.write(b"never sent")
        aborting.abort()
        await asyncio.sleep(0)
        assert aborting.get_extra_info("peername") == "extra peername"  # passes through
        return closed, aborted

    closed, aborted = asyncio.run(scenario())
    assert closed.writes == [b"last words"] and closed.closed
    assert aborted.writes == [] and aborted.aborted


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"part two"})


def test_a_real_server_answers_keep_alive_requests_through_it() -> None:
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=0, log_level="warning", http=CoalescingHttpToolsProtocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            for _ in range(2):  # the same connection twice
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                received = b""
                while not received.endswith(b"0\r\n\r\n"):
                    received += client.recv(4096)
                head, _, body = received.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK")
                assert b"transfer-encoding: chunked" in head
                assert body == b"a\r\npart one, \r\n8\r\npart two\r\n0\r\n\r\n"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
