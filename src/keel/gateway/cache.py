"""Response cache: exact match on the normalized request (plus the pipeline version).

Only non-streaming answers are cached. The key is a SHA-256 over the request body with
sorted keys and the streaming fields removed, so field order and ``stream`` do not matter.
Entries are JSON bytes; the memory backend is an LRU with a TTL, the Redis one uses
``SET ... PX`` so every replica shares it.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

_IGNORED = frozenset({"stream", "stream_options"})


def cache_key(body: Mapping[str, Any], version: str | None = None) -> str:
    normalized = {k: v for k, v in body.items() if k not in _IGNORED}
    digest = hashlib.sha256(orjson.dumps(normalized, option=orjson.OPT_SORT_KEYS))
    if version:
        digest.update(b"\0" + version.encode())
    return digest.hexdigest()


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
