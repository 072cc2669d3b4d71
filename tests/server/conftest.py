"""A real Keel server on an ephemeral loopback port, backed by a real SQLite store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from keel.core.messages import GenerationParams, Message
from keel.pipeline.loader import load_spec_dir, spec_from_data
from keel.providers.testing import TestingProvider
from keel.runtime import Runtime
from keel.server import create_app
from keel.server.protocol import CoalescingHttpToolsProtocol
from keel.settings import KeelSettings

from ..conftest import EXAMPLES

ADMIN_KEY = "keel-test-admin-key-0123456789abcdef"


def fake_triage(messages: Sequence[Message], params: GenerationParams) -> str:
    """Scripted model behaviour: confident about billing words, unsure otherwise."""
    text = messages[-1].content.lower()
    if "charged" in text or "invoice" in text:
        return '{"label": "billing", "confidence": 0.93}'
    return '{"label": "technical", "confidence": 0.41}'


class LiveServer:
    def __init__(self, runtime: Runtime) -> None:
        config = uvicorn.Config(
            create_app(runtime.settings, runtime),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            http=CoalescingHttpToolsProtocol,  # as `keel serve` does
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.runtime = runtime

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def server_settings(home: Path, **sections: Any) -> KeelSettings:
    """Settings for a test server: the echo model, no remote calls, the admin key, labels
    read fresh and spans written within 10 ms; ``sections`` add to or replace these."""
    base: dict[str, Any] = {
        "providers": {"default_model": "testing:echo", "allow_remote": False},
        "server": {"label_cache_seconds": 0},
        "telemetry": {"schedule_delay_ms": 10},
        "auth": {"admin_key": ADMIN_KEY},
    }
    return KeelSettings(home=home, **(base | sections))


@pytest.fixture
def guardrail_settings() -> dict[str, Any]:
    """Overrides of the guardrails settings section; a test module may redefine this."""
    return {}


@pytest.fixture
def runtime(tmp_path: Path, guardrail_settings: dict[str, Any]) -> Iterator[Runtime]:
    runtime = Runtime(server_settings(tmp_path / "home", guardrails=guardrail_settings))
    provider = runtime.registry.provider("testing")
    assert isinstance(provider, TestingProvider)
    provider.function("triage", fake_triage)
    for name in ("support-triage", "summarize"):
        data = load_spec_dir(EXAMPLES / name).model_dump(mode="json", by_alias=True)
        data["model"]["id"] = "testing:triage" if name == "support-triage" else "testing:echo"
        runtime.catalog.push(spec_from_data(data))
    yield runtime
    runtime.close()


@pytest.fixture
def testing_provider(runtime: Runtime) -> TestingProvider:
    provider = runtime.registry.provider("testing")
    assert isinstance(provider, TestingProvider)
    return provider


@pytest.fixture
def live(runtime: Runtime) -> Iterator[LiveServer]:
    with LiveServer(runtime) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=live.url, timeout=30, headers=headers) as http:
        yield http
