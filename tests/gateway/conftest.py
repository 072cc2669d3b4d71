"""A live Keel server whose `openai` and `anthropic` providers point at a real mock upstream.

The mock upstream runs in its own thread and event loop, so tests can drive Keel with the
real (blocking or async) OpenAI SDK while the upstream answers as scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.pipeline.loader import load_spec_dir, spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings

from ..conftest import EXAMPLES
from ..providers.mock_upstream import MockUpstream
from ..server.conftest import ADMIN_KEY, LiveServer, fake_triage


class ThreadedUpstream:
    """``MockUpstream`` served from a background thread's event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.mock = MockUpstream()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> MockUpstream:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.mock.start(), self.loop).result(10)
        return self.mock

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.mock.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def upstream() -> Iterator[MockUpstream]:
    with ThreadedUpstream() as mock:
        yield mock


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def stalled_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: new connections hang in the handshake,
    so a client hits its connect timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in (*fillers, server):
        sock.close()


def gateway_settings(
    tmp_path: Path, upstream: MockUpstream, stalled: int = 0, **gateway: Any
) -> KeelSettings:
    base = {"base_url": upstream.base_url, "api_key": "sk-upstream", "read_timeout": 2.0}
    anthropic = {**base, "base_url": upstream.base_url}
    aliases = {
        "smart": {"models": ["openai:gpt-4o-mini", "testing:echo"]},
        "claude": {"models": ["anthropic:claude-3-5-haiku-20241022"]},
        "embedder": {"models": ["testing:echo"]},
        "resilient": {"models": ["openai:gpt-4o-mini", "backup:gpt-4o-mini"]},
        "resilient-embedder": {
            "models": ["openai:text-embedding-3-small", "backup:text-embedding-3-small"]
        },
        "via-dead": {"models": ["dead:gpt-4o-mini", "backup:gpt-4o-mini"]},
        "via-stalled": {"models": ["stalled:gpt-4o-mini", "backup:gpt-4o-mini"]},
    }
    backup = {**base, "base_url": upstream.base_url + "/backup"}
    dead = {**base, "base_url": f"http://127.0.0.1:{closed_port()}/v1"}
    stalled_endpoint = {
        **base,
        "base_url": f"http://127.0.0.1:{stalled}/v1",
        "connect_timeout": 0.3,
    }
    return KeelSettings(
        home=tmp_path / "home",
        providers={
            "default_model": "testing:echo",
            "allow_remote": False,
            "openai": base,
            "anthropic": anthropic,
            "endpoints": {"backup": backup, "dead": dead, "stalled": stalled_endpoint},
        },
        server={"label_cache_seconds": 0},
        telemetry={"schedule_delay_ms": 10},
        gateway={"aliases": aliases, "retry": {"base_delay": 0.01}} | gateway,
        auth={"admin_key": ADMIN_KEY},
    )


def push_examples(runtime: Runtime) -> None:
    provider = runtime.registry.provider("testing")
    provider.function("triage", fake_triage)  # type: ignore[attr-defined]
    for name in ("support-triage", "summarize"):
        data = load_spec_dir(EXAMPLES / name).model_dump(mode="json", by_alias=True)
        data["model"]["id"] = "testing:triage" if name == "support-triage" else "testing:echo"
        runtime.catalog.push(spec_from_data(data))


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    """Override in a test module to change gateway settings."""
    return {}


@pytest.fixture
def runtime(
    tmp_path: Path,
    upstream: MockUpstream,
    stalled_port: int,
    gateway_settings_extra: dict[str, Any],
) -> Iterator[Runtime]:
    settings = gateway_settings(tmp_path, upstream, stalled_port, **gateway_settings_extra)
    runtime = Runtime(settings)
    push_examples(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def live(runtime: Runtime) -> Iterator[LiveServer]:
    with LiveServer(runtime) as server:
        yield server
