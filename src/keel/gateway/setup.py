"""Builds the gateway (and its shared Redis client, when configured) from a runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.gateway.cache import MemoryCache, RedisCache, ResponseCache
from keel.gateway.keys import KeyService
from keel.gateway.limits import Counters, Limiter, MemoryCounters, RedisCounters
from keel.gateway.metrics import GatewayMetrics
from keel.gateway.service import Gateway
from keel.gateway.usage import UsageLedger

if TYPE_CHECKING:
    from keel.runtime import Runtime


def redis_client(url: str | None) -> Any:
    """An asyncio Redis client for ``url``, or ``None`` to keep shared state in-process."""
    if not url:
        return None
    import redis.asyncio as redis  # deferred: only replicas sharing state need it

    return redis.Redis.from_url(url)


@dataclass(frozen=True, slots=True)
class Auth:
    """Key verification and per-key limits, shared by every request of a process."""

    keys: KeyService
    limiter: Limiter


def build_auth(runtime: Runtime, redis: Any = None) -> Auth:
    counters: Counters = RedisCounters(redis) if redis is not None else MemoryCounters()
    return Auth(KeyService(runtime.store, runtime.settings.auth), Limiter(counters))


def build_metrics(runtime: Runtime) -> GatewayMetrics:
    caller = runtime.model_caller
    return GatewayMetrics(
        lambda: caller.breakers, runtime.tracer_provider, runtime.guardrails.stats.snapshot
    )


def build_gateway(
    runtime: Runtime, redis: Any = None, metrics: GatewayMetrics | None = None
) -> Gateway:
    settings = runtime.settings.gateway
    cache: ResponseCache | None = None
    if settings.cache.enabled:
        if settings.cache.backend == "redis" and redis is not None:
            cache = RedisCache(redis, settings.cache.ttl_seconds)
        else:
            cache = MemoryCache(settings.cache.ttl_seconds, settings.cache.max_entries)
    ledger = UsageLedger(runtime.store.usage)
    return Gateway(runtime, runtime.model_caller, cache, metrics, ledger)
