"""Real `keel serve` processes for tests: on free loopback ports, waited for, always stopped."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

KEEL = Path(sys.executable).parent / "keel"
START_S = 240.0  # a busy shared machine starts a server slowly


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    url: str,
    *,
    path: str = "/readyz",
    timeout_s: float = START_S,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Poll ``url + path`` until it answers 200; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + path, timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"keel serve at {url} did not start"
        time.sleep(0.1)


def start(env: Mapping[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(KEEL), "serve", "--port", str(port)], env=dict(env))


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(20)


@contextmanager
def replicas(env: Mapping[str, str], count: int = 2) -> Iterator[list[str]]:
    """``count`` servers with one environment (so one store); yields their base URLs once
    every one of them is ready."""
    ports = [free_port() for _ in range(count)]
    procs = [start(env, port) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            wait_ready(url)
        yield urls
    finally:
        stop(procs)
