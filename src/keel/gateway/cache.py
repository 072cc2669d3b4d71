"""Response cache: exact match on the normalized request (plus the pipeline version).

The key is a SHA-256 over the request body with sorted keys and the streaming fields
removed, so field order and ``stream`` do not matter: a completed stream is stored as the
``chat.completion`` it amounts to and serves plain and streaming requests alike. An entry
holds that answer, the model that served it and what it cost, which is what a later hit
saves. Entries are JSON bytes; the memory backend is an LRU with a TTL, the Redis one uses
``SET ... PX`` so every replica shares it.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import orjson

_IGNORED = frozenset({"stream", "stream_options"})


def cache_key(body: Mapping[str, Any], version: str | None = None) -> str:
    normalized = {k: v for k, v in body.items() if k not in _IGNORED}
    digest = hashlib.sha256(orjson.dumps(normalized, option=orjson.OPT_SORT_KEYS))
    if version:
        digest.update(b"\0" + version.encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: dict[str, Any]  # the chat.completion object as first sent
    model: str  # the provider:model that served it
    cost_usd: Decimal  # what it cost then: what each hit saves


def encode_entry(body: Mapping[str, Any], model: str, cost: Decimal) -> bytes:
    return orjson.dumps({"body": body, "model": model, "cost_usd": str(cost)})


def decode_entry(raw: bytes) -> CachedAnswer | None:
    """The cached answer, or ``None`` for an entry this version cannot read (a miss)."""
    try:
        entry = orjson.loads(raw)
        body, model = entry["body"], entry["model"]
        cost = Decimal(entry["cost_usd"])
    except (orjson.JSONDecodeError, KeyError, TypeError, InvalidOperation):
        return None
    if not isinstance(body, dict) or not isinstance(model, str):
        return None
    return CachedAnswer(body, model, cost)


class ResponseCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...


class MemoryCache:
    def __init__(self, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return hit[1]

    async def set(self, key: str, value: bytes) -> None:
        # An exact-size copy: orjson hands out bytes with 4 KiB of capacity whatever their
        # length, which made a full cache of ~440-byte answers hold ~45 MB instead of ~6 MB.
        value = bytes(memoryview(value))
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class RedisCache:
    def __init__(self, client: Any, ttl: float, prefix: str = "keel:cache:") -> None:
        self._client = client
        self._ttl_ms = int(ttl * 1000)
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._prefix + key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes) -> None:
        await self._client.set(self._prefix + key, value, px=self._ttl_ms)
