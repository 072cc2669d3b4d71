"""Per-key limits: requests/min, tokens/min and a token or cost budget per period.

Counters are fixed windows (the current minute, hour, day or 30-day period). A request is
admitted only if its counter stays within the limit, checked and incremented in one atomic
step: a Lua script on Redis when replicas share ``redis_url``, a dict otherwise. Token and
cost usage is only known after the answer, so those limits refuse new requests once the
window's usage has reached them, and the usage of each answer is added when it is known.
Cost is counted in micro-dollars.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Protocol

from keel.core.usage import Usage
from keel.gateway.errors import RateLimited
from keel.gateway.keys import PERIODS, Principal

_ADMIT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return -1 end
used = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return used
"""


class Counters(Protocol):
    async def admit(self, key: str, amount: int, limit: int, ttl_s: int) -> bool: ...

    async def add(self, key: str, amount: int, ttl_s: int) -> None: ...

    async def used(self, key: str) -> int: ...


class MemoryCounters:
    """Counters of one process; windows past their time are dropped as they are touched."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[float, int]] = {}

    def _get(self, key: str) -> int:
        hit = self._counts.get(key)
        if hit is None or hit[0] < time.time():
            return 0
        return hit[1]

    async def admit(self, key: str, amount: int, limit: int, ttl_s: int) -> bool:
        used = self._get(key)
        if used + amount > limit:
            return False
        await self.add(key, amount, ttl_s)
        return True

    async def add(self, key: str, amount: int, ttl_s: int) -> None:
        if len(self._counts) > 100_000:
            now = time.time()
            self._counts = {k: v for k, v in self._counts.items() if v[0] >= now}
        self._counts[key] = (time.time() + ttl_s, self._get(key) + amount)

    async def used(self, key: str) -> int:
        return self._get(key)


class RedisCounters:
    """Counters shared by every replica through Redis."""

    def __init__(self, client: Any, prefix: str = "keel:limits:") -> None:
        self._client = client
        self._prefix = prefix
        self._admit = client.register_script(_ADMIT)

    async def admit(self, key: str, amount: int, limit: int, ttl_s: int) -> bool:
        result = await self._admit(keys=[self._prefix + key], args=[amount, limit, ttl_s * 1000])
        return int(result) >= 0

    async def add(self, key: str, amount: int, ttl_s: int) -> None:
        name = self._prefix + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, ttl_s)
            await pipe.execute()

    async def used(self, key: str) -> int:
        value = await self._client.get(self._prefix + key)
        return int(value or 0)


def _window(seconds: int) -> tuple[int, float]:
    """The current window's number and the seconds left in it."""
    now = time.time()
    return int(now // seconds), seconds - (now % seconds)


class Limiter:
    def __init__(self, counters: Counters) -> None:
        self._counters = counters

    async def admit(self, principal: Principal) -> None:
        """Refuse with 429 and ``Retry-After`` when a limit or budget is used up."""
        limits = principal.limits
        if not limits:
            return
        rpm = limits.get("rpm")
        if rpm is not None:
            window, left = _window(60)
            key = f"{principal.key_id}:rpm:{window}"
            if not await self._counters.admit(key, 1, rpm, 120):
                raise _limited(principal, "requests per minute", rpm, left, "rate_limited")
        for name, counter, seconds in self._usage_limits(limits):
            window, left = _window(seconds)
            used = await self._counters.used(f"{principal.key_id}:{counter}:{window}")
            bound = limits[name]
            if counter == "usd":
                bound = int(Decimal(str(bound)) * 1_000_000)
            if used >= bound:
                code = "rate_limited" if counter == "tpm" else "budget_exceeded"
                raise _limited(principal, name, limits[name], left, code)

    async def settle(self, principal: Principal, usage: Usage, cost: Decimal) -> None:
        """Count an answer's tokens and cost against the key's windows."""
        limits = principal.limits
        for _name, counter, seconds in self._usage_limits(limits):
            amount = usage.total_tokens if counter != "usd" else int(cost * 1_000_000)
            if amount > 0:
                window, _ = _window(seconds)
                key = f"{principal.key_id}:{counter}:{window}"
                await self._counters.add(key, amount, seconds * 2)

    @staticmethod
    def _usage_limits(limits: dict[str, Any]) -> list[tuple[str, str, int]]:
        found = []
        if limits.get("tpm") is not None:
            found.append(("tpm", "tpm", 60))
        period = PERIODS[limits.get("budget_period", "day")]
        if limits.get("budget_tokens") is not None:
            found.append(("budget_tokens", "tokens", period))
        if limits.get("budget_usd") is not None:
            found.append(("budget_usd", "usd", period))
        return found


def _limited(principal: Principal, what: str, limit: Any, left: float, code: str) -> RateLimited:
    return RateLimited(
        f"API key {principal.name!r} has used its {what} ({limit}); retry in {left:.0f}s",
        code=code,
        limit=what,
        retry_after=max(1, int(left + 0.999)),
    )
