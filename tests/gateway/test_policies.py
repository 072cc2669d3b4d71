"""Retry, backoff, breaker and concurrency policies on fake models, without a network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from keel.core.errors import ProviderHTTPError, ProviderTimeout
from keel.core.messages import ChatChunk, ChatRequest, ChatResponse, Message, ModelRef
from keel.gateway.breaker import CircuitBreaker
from keel.gateway.errors import CircuitOpen
from keel.gateway.resilience import ModelCaller
from keel.providers.base import ModelProfile
from keel.settings import BreakerSettings, GatewaySettings

pytestmark = pytest.mark.anyio

REQUEST = ChatRequest("m", (Message("user", "hi"),))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FlakyModel:
    """Fails with the given errors in turn, then answers; tracks calls in flight."""

    def __init__(self, *errors: Exception, delay: float = 0.0) -> None:
        self.errors = list(errors)
        self.delay = delay
        self.calls = 0
        self.active = 0
        self.peak = 0

    @property
    def ref(self) -> ModelRef:
        return ModelRef("flaky", "m")

    @property
    def profile(self) -> ModelProfile:
        return ModelProfile("m")

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
            if self.errors:
                raise self.errors.pop(0)
            return ChatResponse("ok")
        finally:
            self.active -= 1

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        yield ChatChunk((await self.complete(request)).text)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return []


def http_error(status: int, retry_after: float | None = None) -> ProviderHTTPError:
    extra = {} if retry_after is None else {"retry_after": retry_after}
    return ProviderHTTPError("x", upstream_status=status, **extra)


def caller(**settings: object) -> tuple[ModelCaller, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return ModelCaller(
        GatewaySettings.model_validate(settings), sleep=sleep, jitter=lambda: 1.0
    ), slept


def no_hook(*args: object) -> None:
    return None


async def test_backoff_doubles_and_honours_retry_after() -> None:
    model = FlakyModel(http_error(500), http_error(503), http_error(429, retry_after=2.5))
    calls, slept = caller(retry={"max_attempts": 4, "base_delay": 0.1, "max_delay": 0.15})
    assert (await calls.complete(model, REQUEST, "flaky:m", no_hook)).text == "ok"
    assert slept == [0.1, 0.15, 2.5]  # 0.1, then 0.2 capped at max_delay, then Retry-After


async def test_only_retryable_failures_are_retried() -> None:
    model = FlakyModel(http_error(400))
    calls, slept = caller()
    with pytest.raises(ProviderHTTPError):
        await calls.complete(model, REQUEST, "flaky:m", no_hook)
    assert model.calls == 1 and slept == []


async def test_attempts_are_bounded_per_model() -> None:
    model = FlakyModel(*(ProviderTimeout("t") for _ in range(5)))
    calls, _ = caller(models={"flaky:m": {"max_attempts": 2}})
    with pytest.raises(ProviderTimeout):
        await calls.complete(model, REQUEST, "flaky:m", no_hook)
    assert model.calls == 2


async def test_total_timeout_cuts_a_slow_call() -> None:
    model = FlakyModel(delay=5)
    calls, _ = caller(models={"flaky:m": {"total_timeout": 0.05, "max_attempts": 1}})
    with pytest.raises(ProviderTimeout, match="total timeout"):
        await calls.complete(model, REQUEST, "flaky:m", no_hook)


async def test_concurrency_per_provider_is_bounded() -> None:
    model = FlakyModel(delay=0.02)
    calls, _ = caller(max_concurrency_per_provider=2)
    await asyncio.gather(*(calls.complete(model, REQUEST, "flaky:m", no_hook) for _ in range(6)))
    assert model.peak == 2 and model.calls == 6


def test_breaker_opens_after_n_failures_in_the_window_and_probes_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "p", BreakerSettings(failure_threshold=3, window_seconds=10, open_seconds=5), clock
    )
    breaker.on_failure()
    clock.now = 11  # the first failure leaves the window
    breaker.on_failure()
    breaker.on_failure()
    assert breaker.state == "closed"
    breaker.on_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.details["retry_after"] >= 1
    clock.now = 16.5
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller waits for the probe
    breaker.on_failure()  # failed probe: open again
    assert breaker.state == "open"
    clock.now = 22
    breaker.before_call()
    breaker.on_success()
    assert breaker.state == "closed"
