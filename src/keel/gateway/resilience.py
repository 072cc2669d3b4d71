"""Resilient model calls: timeouts, retries with backoff and jitter, circuit breakers and
bounded concurrency per provider endpoint.

Retries happen only for retryable failures (429, 5xx, timeouts, lost connections, broken
streams) and, for streams, only before the first chunk reached the client. A
``Retry-After`` from the upstream is honoured when it is short; a long one ends the attempts
on this model at once so the fallback chain can take over.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import TypeVar

from keel.core.errors import KeelError, ProviderError, ProviderTimeout
from keel.core.messages import ChatChunk, ChatRequest, ChatResponse, ModelRef
from keel.core.usage import Price
from keel.gateway.breaker import CircuitBreaker
from keel.pipeline.generate import ModelSource
from keel.providers.base import ChatModel, ModelProfile
from keel.settings import GatewaySettings, ModelPolicySettings

_T = TypeVar("_T")
RetryHook = Callable[[str, BaseException, float], None]
"""Called before each retry with the model id, the failure and the delay in seconds."""


@dataclass(frozen=True, slots=True)
class Policy:
    attempts: int
    total_timeout: float | None
    first_token_timeout: float | None


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, KeelError) and exc.retryable


class ModelCaller:
    """Calls models under the gateway's policies; one per process, shared by requests."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._jitter = jitter
        self._breakers: dict[str, CircuitBreaker] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._policies: dict[str, Policy] = {}
        self._priced: dict[str, tuple[ModelProfile, ModelProfile]] = {}

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        return self._breakers

    def breaker(self, provider: str) -> CircuitBreaker:
        found = self._breakers.get(provider)
        if found is None:
            found = self._breakers[provider] = CircuitBreaker(provider, self._settings.breaker)
        return found

    def policy(self, model_id: str) -> Policy:
        found = self._policies.get(model_id)
        if found is None:
            own = self._settings.models.get(model_id) or ModelPolicySettings()
            found = Policy(
                own.max_attempts or self._settings.retry.max_attempts,
                own.total_timeout,
                own.first_token_timeout,
            )
            self._policies[model_id] = found
        return found

    def priced(self, model_id: str, profile: ModelProfile) -> ModelProfile:
        """``profile`` with the price configured for ``model_id``, if any."""
        price = self._settings.prices.get(model_id)
        if price is None:
            return profile
        found = self._priced.get(model_id)
        if found is None or found[0] is not profile:
            priced = replace(profile, price=Price(price.input_per_mtok, price.output_per_mtok))
            found = self._priced[model_id] = (profile, priced)
        return found[1]

    def _limit(self, provider: str) -> asyncio.Semaphore:
        found = self._limits.get(provider)
        if found is None:
            found = asyncio.Semaphore(self._settings.max_concurrency_per_provider)
            self._limits[provider] = found
        return found

    def backoff(self, attempt: int, exc: KeelError) -> float | None:
        """Seconds before the next attempt, or ``None`` when waiting is not worth it."""
        retry = self._settings.retry
        retry_after = exc.details.get("retry_after")
        if isinstance(retry_after, int | float):
            wait = float(retry_after)
            return wait if wait <= retry.max_retry_after else None
        delay = min(retry.max_delay, retry.base_delay * 2 ** (attempt - 1))
        return float(delay / 2 + self._jitter() * delay / 2)

    async def complete(
        self, model: ChatModel, request: ChatRequest, model_id: str, on_retry: RetryHook
    ) -> ChatResponse:
        return await self._call(model, model_id, lambda: model.complete(request), on_retry)

    async def embed(
        self, model: ChatModel, texts: Sequence[str], model_id: str, on_retry: RetryHook
    ) -> list[list[float]]:
        """Embeddings under the same timeouts, retries, breaker and concurrency bound."""
        return await self._call(model, model_id, lambda: model.embed(texts), on_retry)

    async def _call(
        self,
        model: ChatModel,
        model_id: str,
        call: Callable[[], Awaitable[_T]],
        on_retry: RetryHook,
    ) -> _T:
        policy = self.policy(model_id)
        breaker = self.breaker(model.ref.provider)
        attempt = 0
        while True:
            attempt += 1
            breaker.before_call()
            try:
                async with self._limit(model.ref.provider):
                    result = await _timed(call(), policy, model_id)
            except BaseException as exc:
                _judge(breaker, exc)
                delay = self._next_delay(attempt, policy, exc)
                if delay is None:
                    raise
                on_retry(model_id, exc, delay)
                await self._sleep(delay)
                continue
            breaker.on_success()
            return result

    def _next_delay(self, attempt: int, policy: Policy, exc: BaseException) -> float | None:
        if attempt >= policy.attempts or not is_retryable(exc):
            return None
        assert isinstance(exc, KeelError)
        return self.backoff(attempt, exc)

    async def open_stream(
        self, model: ChatModel, request: ChatRequest, model_id: str, on_retry: RetryHook
    ) -> tuple[ChatChunk | None, AsyncIterator[ChatChunk]]:
        """The first chunk and the rest of the stream; retried until a first chunk arrives."""
        policy = self.policy(model_id)
        breaker = self.breaker(model.ref.provider)
        limit = self._limit(model.ref.provider)
        attempt = 0
        while True:
            attempt += 1
            breaker.before_call()
            await limit.acquire()
            chunks = aiter(model.stream(request))
            try:
                first = await _first(chunks, policy, model_id)
            except BaseException as exc:
                limit.release()
                with suppress(Exception):
                    await chunks.aclose()  # type: ignore[attr-defined]
                _judge(breaker, exc)
                delay = self._next_delay(attempt, policy, exc)
                if delay is None:
                    raise
                on_retry(model_id, exc, delay)
                await self._sleep(delay)
                continue
            return first, _rest(chunks, first, limit, breaker)


def _judge(breaker: CircuitBreaker, exc: BaseException) -> None:
    if is_retryable(exc):
        breaker.on_failure()
    elif isinstance(exc, ProviderError):
        breaker.on_success()  # the endpoint answered; the request itself was refused
    else:
        breaker.release_probe()


async def _timed(call: Awaitable[_T], policy: Policy, model_id: str) -> _T:
    if policy.total_timeout is None:
        return await call
    try:
        async with asyncio.timeout(policy.total_timeout):
            return await call
    except TimeoutError as exc:
        raise _timeout(model_id, "total", policy.total_timeout) from exc


async def _first(
    chunks: AsyncIterator[ChatChunk], policy: Policy, model_id: str
) -> ChatChunk | None:
    limit = policy.first_token_timeout or policy.total_timeout
    try:
        async with asyncio.timeout(limit):
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except TimeoutError as exc:
        kind = "first_token" if policy.first_token_timeout else "total"
        raise _timeout(model_id, kind, limit or 0.0) from exc


async def _rest(
    chunks: AsyncIterator[ChatChunk],
    first: ChatChunk | None,
    limit: asyncio.Semaphore,
    breaker: CircuitBreaker,
) -> AsyncIterator[ChatChunk]:
    try:
        if first is None:
            return
        async for chunk in chunks:
            yield chunk
        breaker.on_success()
    except BaseException as exc:
        _judge(breaker, exc)
        raise
    finally:
        limit.release()
        with suppress(Exception):
            await chunks.aclose()  # type: ignore[attr-defined]


def _timeout(model_id: str, kind: str, seconds: float) -> ProviderTimeout:
    return ProviderTimeout(
        f"{model_id} did not answer within the {kind} timeout of {seconds:g}s "
        f"(gateway.models[{model_id!r}].{kind}_timeout)",
        model=model_id,
        timeout=kind,
        timeout_seconds=seconds,
    )


class ResilientModel:
    """A ``ChatModel`` whose calls go through a ``ModelCaller`` (retries, breaker, limits),
    so pipeline runs get the same protection as gateway calls, and whose price comes from
    ``gateway.prices`` when set there."""

    __slots__ = ("_caller", "_id", "_model", "_profile")

    def __init__(self, model: ChatModel, model_id: str, caller: ModelCaller) -> None:
        self._model = model
        self._id = model_id
        self._caller = caller
        self._profile = caller.priced(model_id, model.profile)

    @property
    def ref(self) -> ModelRef:
        return self._model.ref

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await self._caller.complete(self._model, request, self._id, _ignore)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        first, rest = await self._caller.open_stream(self._model, request, self._id, _ignore)
        if first is not None:
            yield first
        async for chunk in rest:
            yield chunk

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._caller.embed(self._model, texts, self._id, _ignore)


class ResilientModels:
    """A model source (for the pipeline runner) handing out ``ResilientModel`` wrappers."""

    def __init__(self, source: ModelSource, caller: ModelCaller) -> None:
        self._source = source
        self._caller = caller
        self._models: dict[str, ResilientModel] = {}

    def model(self, model_id: str) -> ChatModel:
        found = self._models.get(model_id)
        if found is None:
            found = ResilientModel(self._source.model(model_id), model_id, self._caller)
            self._models[model_id] = found
        return found


def _ignore(model_id: str, exc: BaseException, delay: float) -> None:
    return None
