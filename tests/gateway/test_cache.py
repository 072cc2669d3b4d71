"""The response cache: exact match on the normalized request, bypass header, Redis backend."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from keel.gateway.cache import RedisCache, cache_key

from ..providers.mock_upstream import MockUpstream, json_reply, openai_completion
from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration

PRIMARY = "/v1/chat/completions"
ASK = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    return {"cache": {"enabled": True, "ttl_seconds": 60}}


def post(live: LiveServer, body: Any, **headers: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN_KEY}", **headers}
    return httpx.post(live.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)


def test_identical_requests_hit_the_cache(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script(PRIMARY, json_reply(openai_completion("cached answer")))
    first = post(live, ASK)
    reordered = post(live, {"messages": ASK["messages"], "model": ASK["model"]})
    assert len(upstream.requests) == 1
    assert "x-keel-cache" not in first.headers
    assert reordered.headers["x-keel-cache"] == "hit"
    assert reordered.json()["choices"] == first.json()["choices"]
    assert reordered.json()["id"] != first.json()["id"]
    post(live, {**ASK, "temperature": 0.5})  # a different request is a miss
    post(live, ASK, **{"cache-control": "no-cache"})  # bypass
    assert len(upstream.requests) == 3


def test_key_ignores_streaming_fields_and_includes_the_version() -> None:
    assert cache_key({"a": 1, "stream": True}) == cache_key({"a": 1})
    assert cache_key({"a": 1}, "v1") != cache_key({"a": 1}, "v2")


@pytest.mark.anyio
async def test_redis_backend_shares_entries() -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"keel-test:{secrets.token_hex(4)}:"
    try:
        one, two = RedisCache(client, 60, prefix), RedisCache(client, 60, prefix)
        await one.set("k", b"answer")
        assert await two.get("k") == b"answer"
        assert await two.get("other") is None
    finally:
        await client.delete(prefix + "k")
        await client.aclose()


def test_pipeline_answers_are_cached_per_version(live: LiveServer) -> None:
    body = {
        "model": "pipeline/summarize",
        "messages": [{"role": "user", "content": '{"text": "Keel wraps models."}'}],
    }
    first = post(live, body)
    again = post(live, body)
    assert first.status_code == 200 and again.headers["x-keel-cache"] == "hit"
    assert again.json()["keel"]["version"] == first.json()["keel"]["version"]
