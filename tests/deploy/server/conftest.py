"""A real server on an ephemeral port whose pipeline ``triage`` has three versions, each on
its own function model: ``stable`` (labelled production), ``candidate`` and ``second`` (a
second candidate, for deployments with several). Tests change the
models' behaviour (errors, latency, first token, answers) through ``Behaviour``."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.core.errors import ProviderHTTPError
from keel.core.messages import ChatChunk, ChatRequest, GenerationParams, Message, ModelRef
from keel.core.usage import Usage
from keel.deploy.mirrors import build_mirror
from keel.providers.testing import FunctionModel, TestingProvider
from keel.runtime import Runtime
from keel.settings import KeelSettings
from tests.deploy.conftest import spec
from tests.server.conftest import ADMIN_KEY, LiveServer, client, server_settings

# ``client`` talks to this directory's ``live`` server.
__all__ = ["ADMIN_KEY", "LiveServer", "client"]


@dataclass
class Behaviour:
    """How one arm's model answers: its text, error rate and latency (seconds)."""

    answer: str = "ok"
    error_rate: float = 0.0
    leak_rate: float = 0.0  # how often the answer carries an e-mail address (a PII flag)
    latency_s: float = 0.0
    jitter_s: float = 0.0
    first_token_s: float = 0.0  # streamed: the first word's delay (then the rest by latency_s)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    calls: int = 0

    async def __call__(self, messages: Sequence[Message], params: GenerationParams) -> str:
        self.calls += 1
        delay = self.latency_s + self.rng.random() * self.jitter_s
        if delay:
            await asyncio.sleep(delay)
        return self._text()

    def _text(self) -> str:
        if self.rng.random() < self.error_rate:
            raise ProviderHTTPError("scripted failure", upstream_status=500)
        if self.rng.random() < self.leak_rate:
            return self.answer + ", write to jane.doe@example.com"
        return self.answer

    async def stream(self) -> AsyncIterator[ChatChunk]:
        self.calls += 1
        total = self.latency_s + self.rng.random() * self.jitter_s
        first = self.first_token_s + self.rng.random() * self.jitter_s
        await asyncio.sleep(first)
        head, _, tail = self._text().partition(" ")
        yield ChatChunk(head)
        await asyncio.sleep(max(0.0, total - first))
        yield ChatChunk(" " + tail if tail else "")
        yield ChatChunk(finish_reason="stop", usage=Usage(5, 3))


class ArmModel(FunctionModel):
    """An arm's model: answers whole after ``latency_s``, or streams per ``first_token_s``."""

    def __init__(self, name: str, behaviour: Behaviour) -> None:
        super().__init__(behaviour, ref=ModelRef("testing", name))
        self.behaviour = behaviour

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async for chunk in self.behaviour.stream():
            yield chunk


@dataclass
class Deployed:
    runtime: Runtime
    stable: str
    candidate: str
    arms: dict[str, Behaviour]
    second: str = ""


def arms_runtime(settings: KeelSettings, arms: dict[str, Behaviour]) -> Runtime:
    """A runtime whose testing provider serves each arm's model. The shadow worker process
    builds its own with it, from the behaviours as they are when the worker starts."""
    runtime = Runtime(settings)
    provider = runtime.registry.provider("testing")
    assert isinstance(provider, TestingProvider)
    for name, behaviour in arms.items():
        provider.add(name, ArmModel(name, behaviour))
    return runtime


def build_runtime(
    home: Path,
    guardrails: dict[str, object] | None = None,
    *,
    breaker: bool = True,
    **deploy: object,
) -> Deployed:
    """``breaker=False``: the arms' scripted failures never open the testing provider's
    circuit (all arms share it), so every failure a test sees is its model's own.
    ``deploy``: settings of the deploy section, e.g. ``shadow_isolation="process"``."""
    gateway: dict[str, object] = {"retry": {"max_attempts": 1}}
    if not breaker:
        gateway["breaker"] = {"failure_threshold": 1_000_000}
    # The shadow runs on the server's loop unless a test asks for its worker process
    # (test_shadow*.py run both): the controller's tests judge paired scores within seconds,
    # and a worker process starting at low priority on a busy test machine can lag them.
    settings = server_settings(
        home,
        gateway=gateway,
        deploy={"poll_seconds": 0.2, "controller_seconds": 0.2, "shadow_isolation": "loop"}
        | deploy,
    )
    arms = {
        "stable": Behaviour("stable says hi"),
        "candidate": Behaviour("candidate says hi"),
        "second": Behaviour("second says hi", rng=random.Random(8)),
    }
    runtime = arms_runtime(settings, arms)
    runtime.shadow = build_mirror(runtime, functools.partial(arms_runtime, settings, arms))
    stable = runtime.catalog.push(spec("testing:stable", "v1", guardrails)).version
    candidate = runtime.catalog.push(spec("testing:candidate", "v2", guardrails)).version
    second = runtime.catalog.push(spec("testing:second", "v3", guardrails)).version
    runtime.catalog.set_label("triage", "production", stable)
    return Deployed(runtime, stable, candidate, arms, second)


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    built = build_runtime(tmp_path / "home")
    yield built
    built.runtime.close()


@pytest.fixture
def live(deployed: Deployed) -> Iterator[LiveServer]:
    with LiveServer(deployed.runtime) as server:
        yield server


def invoke(client: httpx.Client, text: str = "hello", **headers: str) -> httpx.Response:
    return client.post(
        "/v1/pipelines/triage/invoke", json={"input": {"text": text}}, headers=headers
    )


def start(client: httpx.Client, version: Any, **body: Any) -> httpx.Response:
    """Start a deployment of the ``triage`` endpoint; ``version`` is one or a list."""
    return client.post("/api/deployments", json={"pipeline": "triage", "version": version, **body})


def state(client: httpx.Client) -> dict[str, Any]:
    """The endpoint's deployment status and history, to compare before and after a refusal."""
    return {
        "status": client.get("/api/deployments/triage").json(),
        "history": client.get("/api/deployments/triage/history").json(),
    }
